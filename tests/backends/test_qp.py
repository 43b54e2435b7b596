"""The fast quoted-printable encoder preflight measures with is the email package's, byte for
byte: a size preflight passes is the size a message has."""

from __future__ import annotations

from email import quoprimime

from hypothesis import given
from hypothesis import strategies as st

from digest.backends.mime import _QP_LINE, _qp_encode, encoded_body, encoded_offset

# Long runs of the characters that move line breaks: "=", whitespace, line ends, non-ASCII.
TEXT = st.text(alphabet=st.sampled_from("ab =\t\r\n\xe9\xff\u20ac<>\"'x"), max_size=400)


@given(TEXT)
def test_the_encoder_matches_the_email_package(text: str) -> None:
    body = text.encode("utf-8").decode("latin-1")
    assert _qp_encode(body, _QP_LINE) == quoprimime.body_encode(body, _QP_LINE)


@given(st.text(alphabet="abc =\n", max_size=300), st.integers(min_value=0, max_value=300))
def test_a_url_is_found_where_it_starts_in_the_encoded_part(prefix: str, pad: int) -> None:
    url = "https://n.example/u/" + "k" * pad + "?a=1"
    part = encoded_body(prefix + url + " tail\n")
    at = encoded_offset(part, url)
    assert at >= 0
    # Decoding from that byte on starts with the URL (soft breaks and =3D undone).
    rest = part[at:].replace(b"=\r\n", b"").replace(b"=3D", b"=")
    assert rest.startswith(url.encode())


def test_a_missing_url_is_minus_one() -> None:
    assert encoded_offset(encoded_body("<p>no link</p>"), "https://n.example/u/x") == -1
