"""router/routing"""
