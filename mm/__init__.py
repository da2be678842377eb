"""The market maker: one process per market that quotes around a reference price through the
API as an ordinary API-key user.
"""
