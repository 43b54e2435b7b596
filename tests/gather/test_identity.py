"""Identity: canonical URLs (properties), GUID scope, near-duplicate headlines, richest merge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from digest.gather.candidate import Candidate
from digest.gather.identity import canonical_url, deduplicate, url_key

T0 = datetime(2026, 11, 18, 10, tzinfo=UTC)
HOSTS = st.sampled_from(["News.Example", "news.example", "NEWS.example."])
PATHS = st.lists(st.text(alphabet="abcxyz-_0%7E", min_size=1, max_size=6), max_size=3)
PARAMS = st.lists(
    st.tuples(
        st.sampled_from(
            ["utm_source", "utm_Medium", "fbclid", "gclid", "id", "page", "q", "mc_cid"]
        ),
        st.text(alphabet="abc123", max_size=4),
    ),
    max_size=4,
)


def url_from(
    scheme: str, host: str, port: str, path: list[str], params: list[tuple[str, str]], slash: bool
) -> str:
    query = "&".join(f"{k}={v}" for k, v in params)
    tail = ("/" if slash else "") + (f"?{query}" if query else "")
    return f"{scheme}://{host}{port}/{'/'.join(path)}{tail}#frag"


URLS = st.builds(
    url_from,
    st.sampled_from(["http", "HTTPS", "https"]),
    HOSTS,
    st.sampled_from(["", ":443", ":80", ":8080"]),
    PATHS,
    PARAMS,
    st.booleans(),
)


@given(URLS)
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once


@given(URLS)
def test_canonical_url_has_no_tracking_no_fragment_and_a_lowercase_host(url: str) -> None:
    canonical = canonical_url(url)
    assert (
        "utm_" not in canonical.lower() and "fbclid" not in canonical and "gclid" not in canonical
    )
    assert "mc_cid" not in canonical and "#" not in canonical
    host = canonical.split("://", 1)[1].split("/", 1)[0]
    assert host == host.lower() and not host.endswith(".")


@given(URLS)
def test_tracking_parameters_and_trailing_slash_do_not_change_identity(url: str) -> None:
    bare = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    kept = [
        p
        for p in url.split("#")[0].partition("?")[2].split("&")
        if p.split("=")[0] in ("id", "page", "q")
    ]
    rebuilt = bare + ("?" + "&".join(kept) if kept else "")
    assert url_key(url) == url_key(rebuilt)


@given(st.text(max_size=40))
def test_canonical_url_never_raises_on_garbage(value: str) -> None:
    assert isinstance(canonical_url(value), str)


def test_default_ports_go_and_other_ports_stay() -> None:
    assert canonical_url("https://x.example:443/a") == "https://x.example/a"
    assert canonical_url("http://x.example:80/a/") == "http://x.example/a"
    assert canonical_url("http://x.example:8080/a") == "http://x.example:8080/a"


def test_query_is_sorted_and_kept_apart_from_tracking() -> None:
    assert (
        canonical_url("https://x.example/a?b=2&utm_source=z&a=1") == "https://x.example/a?a=1&b=2"
    )


def test_http_and_https_copies_have_one_key() -> None:
    assert url_key("http://x.example/a") == url_key("https://X.example/a/")


def cand(url: str, title: str, **fields: object) -> Candidate:
    return Candidate(url=url, title=title, **fields)  # type: ignore[arg-type]


def test_same_url_with_tracking_merges_into_one() -> None:
    merged = deduplicate(
        [
            cand("https://x.example/a?utm_source=rss", "One"),
            cand("https://x.example/a/", "One again"),
        ]
    )
    assert [c.url for c in merged] == ["https://x.example/a"]


def test_near_duplicate_headlines_across_sources_merge_keeping_the_richest_fields() -> None:
    europe = cand(
        "https://m.example/europe/deal",
        "Brussels and Ankara Agree Framework to Revive Customs Union Talks",
        summary="short",
        section="Europe",
        published_at=T0 + timedelta(hours=5),
        guid="g1",
    )
    diplomacy = cand(
        "https://m.example/diplomacy/deal",
        "Brussels and Ankara agree framework to revive customs-union talks",
        summary="a much longer excerpt from the diplomacy desk",
        author="Ines Duarte",
        image_url="https://img.example/deal.jpg",
        section="Diplomacy",
        published_at=T0,
    )
    (merged,) = deduplicate([europe, diplomacy])
    assert merged.url == "https://m.example/europe/deal" and merged.section == "Europe"
    assert merged.summary == "a much longer excerpt from the diplomacy desk"
    assert merged.author == "Ines Duarte" and merged.image_url == "https://img.example/deal.jpg"
    assert merged.published_at == T0
    assert merged.aliases == ("https://m.example/diplomacy/deal",)


def test_headlines_that_differ_in_substance_stay_apart() -> None:
    a = cand("https://x.example/1", "Ukraine war: day 100 of the siege of the city")
    b = cand("https://x.example/2", "Ukraine war: day 101 of the siege of the city")
    c = cand("https://x.example/3", "Markets fall as oil prices rise again today")
    assert len(deduplicate([a, b, c], similarity=0.9)) == 3


def test_short_generic_headlines_never_merge_on_wording_alone() -> None:
    assert (
        len(
            deduplicate(
                [cand("https://x.example/1", "Editorial"), cand("https://y.example/2", "Editorial")]
            )
        )
        == 2
    )


def test_identical_headlines_published_weeks_apart_are_different_articles() -> None:
    a = cand("https://x.example/1", "The week in review: trade and tariffs", published_at=T0)
    b = cand(
        "https://x.example/2",
        "The week in review: trade and tariffs",
        published_at=T0 - timedelta(days=21),
    )
    assert len(deduplicate([a, b])) == 2


def test_a_feed_local_guid_only_matches_within_its_feed() -> None:
    a = cand(
        "https://a.example/x",
        "Story from the first feed",
        guid="1",
        source_url="https://a.example/feed",
    )
    b = cand(
        "https://b.example/y",
        "Another story, second feed",
        guid="1",
        source_url="https://b.example/feed",
    )
    c = cand(
        "https://a.example/x-renamed",
        "Story from the first feed, renamed",
        guid="1",
        source_url="https://a.example/feed",
    )
    merged = deduplicate([a, b, c])
    assert [m.url for m in merged] == ["https://a.example/x", "https://b.example/y"]


def test_a_uri_guid_matches_across_feeds() -> None:
    a = cand(
        "https://a.example/x",
        "First copy of the story",
        guid="tag:a.example,2026:7",
        source_url="f1",
    )
    b = cand(
        "https://mirror.example/x",
        "Mirror copy headline",
        guid="tag:a.example,2026:7",
        source_url="f2",
    )
    assert len(deduplicate([a, b])) == 1


def test_deduplication_is_order_stable() -> None:
    items = [
        cand(f"https://x.example/{i}", f"Distinct headline number {i} about topic {i * 7}")
        for i in range(50)
    ]
    assert [c.url for c in deduplicate(items)] == [c.url for c in items]


# Each row: one headline as different desks typeset it. Every variant must merge with the first.
TYPOGRAPHIC_VARIANTS = [
    (
        "Turkey's New Naval Strategy, Explained",
        "TURKEY\u2019S NEW NAVAL STRATEGY \u2014 EXPLAINED",
        "Turkey\u2019s new naval strategy \u2013 explained",
        "turkey's naval strategy: explained",
    ),
    (
        "\u201cNo Deal\u201d: Brussels and London Part Ways",
        '"No deal": Brussels and London part ways',
        "\u2018NO DEAL\u2019 \u2014 BRUSSELS AND LONDON PART WAYS",
    ),
    (
        "S\u00e3o Paulo\u2019s Mayor Resigns Amid Probe",
        "Sao Paulo's mayor resigns amid probe",
        "S\u00c3O PAULO\u2019S MAYOR RESIGNS\u2014AMID PROBE",
    ),
    (
        "The Allies' Dilemma Over Kyiv Aid",
        "The Allies\u2019 dilemma over Kyiv aid",
        "THE ALLIES DILEMMA OVER KYIV AID",
    ),
]


def test_typographic_variants_of_a_headline_merge() -> None:
    for row_no, row in enumerate(TYPOGRAPHIC_VARIANTS):
        copies = [
            Candidate(url=f"https://desk{i}.example/{row_no}", title=title, published_at=T0)
            for i, title in enumerate(row)
        ]
        merged = deduplicate(copies, similarity=0.8)
        assert len(merged) == 1, f"{row[0]!r} stayed {len(merged)} articles"
        assert set(merged[0].aliases) == {c.url for c in copies[1:]}


def test_possessive_and_dashes_do_not_make_words() -> None:
    from digest.gather.titles import title_words

    assert title_words("Turkey's New Naval Strategy, Explained") == title_words(
        "TURKEY\u2019S NEW NAVAL STRATEGY\u2014EXPLAINED"
    )
    assert title_words("Don\u2019t Panic: the States\u2019 Plan") == {
        "dont",
        "panic",
        "states",
        "plan",
    }
