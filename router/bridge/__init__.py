"""router/bridge"""
