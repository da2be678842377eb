"""What a signature covers: `deps.signed_path` is the path and query Starlette's
`request.url` gives, for every path and query an HTTP parser lets through."""

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from api.deps import signed_path

# What a decoded path may hold (uvicorn percent-decodes it: '?', '#', '\\', '%' and any
# character can appear), and what a query string may hold as sent.
PATH_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)
QUERY = st.text(st.sampled_from("abcXYZ019=&%+-._~:@!$'()*,;/?é"), max_size=40).map(str.encode)


def request_for(path: str, query: bytes) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "server": ("127.0.0.1", 8000),
            "path": path,
            "query_string": query,
            "headers": [(b"host", b"api.example")],
        }
    )


def by_url(request: Request) -> str:
    url = request.url
    return url.path + (f"?{url.query}" if url.query else "")


@settings(max_examples=500, deadline=None)
@given(PATH_TEXT, QUERY)
def test_the_signed_path_is_the_urls(path_text: str, query: bytes) -> None:
    request = request_for("/api/v1/" + path_text, query)
    assert signed_path(request) == by_url(request)


def test_escaped_characters_and_a_leading_double_slash() -> None:
    for path in ("/a?b", "/a#b", "/a\\b", "//x/y", "/é/%3F"):
        request = request_for(path, b"q=1")
        assert signed_path(request) == by_url(request)
