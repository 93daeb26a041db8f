// The one fetch wrapper of the UI: JSON in and out, errors as {ok: false, message}.

// hooks.unauthorized(message): called on a 401 (requireLogin on and no token cookie yet).
export const hooks = { unauthorized: null };

export async function api(method, path, body) {
  const init = {
    method,
    credentials: "same-origin",
    // A JSON content type on every call: the server's CSRF rule for state-changing requests.
    headers: { Accept: "application/json", "Content-Type": "application/json" },
  };
  if (body !== undefined) init.body = JSON.stringify(body);
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    return { ok: false, status: 0, data: null, message: "network error" };
  }
  const text = await resp.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  const message = data?.error?.message ?? (resp.ok ? "" : `HTTP ${resp.status}`);
  if (resp.status === 401) hooks.unauthorized?.(message);
  return { ok: resp.ok, status: resp.status, data, text, headers: resp.headers, message };
}

export function listOf(data, ...keys) {
  if (Array.isArray(data)) return data;
  for (const key of keys) if (Array.isArray(data?.[key])) return data[key];
  return [];
}
