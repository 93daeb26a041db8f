"""The Traffic Inspector domain: records, masking, detection, SSE merge, live buffer, HAR/JSONL."""
