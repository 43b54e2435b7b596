"""Settings: the TOML contract, environment overrides, and one-line errors for bad keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import config_path, deprecations, load_settings
from digest.errors import ConfigError

MINIMAL = """
[publication]
name = "Example Review"
url = "https://review.example"
timezone = "Europe/Berlin"
postal_address = "1 Example Street, Berlin"

[newsletter]
title = "Weekly"
from_email = "news@review.example"
sections = ["Europe", "Asia"]

[[sources]]
url = "feeds/europe.xml"
section = "Europe"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(text)
    return path


def test_minimal_file_loads_with_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.delivery.backend == "outbox"
    assert settings.newsletter.max_items == 12
    assert settings.publication.tz.key == "Europe/Berlin"


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/digest.db"
    assert settings.outbox_path == tmp_path.resolve() / "outbox"
    assert settings.source_location(settings.sources[0]) == str(
        tmp_path.resolve() / "feeds/europe.xml"
    )


def test_environment_overrides_a_nested_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_DELIVERY__BACKEND", "smtp")
    monkeypatch.setenv("DIGEST_NEWSLETTER__MAX_ITEMS", "7")
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.delivery.backend == "smtp"
    assert settings.newsletter.max_items == 7
    assert settings.newsletter.title == "Weekly"  # the rest of the section survives


def test_secret_comes_from_environment_and_is_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", "new-key, old-key")
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.secret_keys() == ["new-key", "old-key"]
    assert "new-key" not in repr(settings)


def test_secret_in_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DIGEST_SECRET_KEY"):
        load_settings(write(tmp_path, 'secret_key = "oops"\n' + MINIMAL))


def test_missing_secret_key_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DIGEST_SECRET_KEY is not set"):
        load_settings(write(tmp_path, MINIMAL)).secret_keys()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('backend = "outbox"', 'backend = "smpt"'), "[delivery] backend: Input should be"),
        (("max_items = 12", "max_itmes = 12"), "[newsletter] max_itmes: unknown key"),
        (('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"'), "unknown IANA timezone"),
        (('section = "Europe"', 'section = "Africa"'), "[[sources]] #1 section"),
        (('url = "feeds/europe.xml"', 'kind = "feed"'), "[[sources]] #1 url: required key"),
        (
            ('url = "feeds/europe.xml"', 'url = "ftp://example.com/feed.xml"'),
            "[[sources]] #1 url: Value error, 'ftp' URLs cannot be fetched",
        ),
        (('url = "feeds/europe.xml"', 'url = " "'), "[[sources]] #1 url: Value error, is empty"),
    ],
)
def test_bad_key_is_one_line_naming_key_and_file(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    text = MINIMAL + '\n[delivery]\nbackend = "outbox"\n'
    text = text.replace("[newsletter]\n", "[newsletter]\nmax_items = 12\n")
    path = write(tmp_path, text.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_invalid_toml_reports_the_position(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 2"):
        load_settings(write(tmp_path, "[publication]\nname = \n"))


def test_missing_file_says_how_to_choose_another(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--config PATH or set DIGEST_CONFIG"):
        load_settings(tmp_path / "nope.toml")


def test_config_path_prefers_option_then_environment() -> None:
    assert config_path("a.toml", {"DIGEST_CONFIG": "b.toml"}) == Path("a.toml")
    assert config_path(None, {"DIGEST_CONFIG": "b.toml"}) == Path("b.toml")
    assert config_path(None, {}) == Path("digest.toml")


@pytest.mark.parametrize(
    "url", ["https://example.com/feed.xml", "HTTP://example.com/f", "file:///tmp/f.xml", "f.xml"]
)
def test_fetchable_source_urls_are_accepted(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, MINIMAL.replace('url = "feeds/europe.xml"', f'url = "{url}"'))
    assert load_settings(path).sources[0].url == url


def test_rank_table_loads_with_its_weights(tmp_path: Path) -> None:
    text = MINIMAL + '\n[rank]\nhalf_life_hours = 48\nsection_weights = { "Asia" = 1.5 }\n'
    settings = load_settings(write(tmp_path, text))
    assert settings.rank.half_life_hours == 48
    assert settings.rank.section_weights == {"Asia": 1.5}
    assert settings.rank.per_section_min == 1 and settings.rank.max_per_author is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'section_weights = { "Sport" = 2.0 }',
            "[rank] section_weights: 'Sport' is not one of [newsletter] sections",
        ),
        ('section_weights = { "Asia" = -1 }', "[rank] section_weights: Value error, weights"),
        ("per_section_min = 9", "[rank] per_section_min (9) is more than [newsletter] per_section"),
        ("half_life_hours = 0", "[rank] half_life_hours: Input should be greater than 0"),
    ],
)
def test_a_bad_rank_setting_is_one_line(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, MINIMAL + f"\n[rank]\n{table}\n"))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("backend", ["smtp", "sendgrid"])
def test_a_real_send_backend_needs_an_https_base_url(tmp_path: Path, backend: str) -> None:
    text = (
        MINIMAL
        + f'\n[delivery]\nbackend = "{backend}"\n\n[web]\nbase_url = "http://news.example"\n'
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message == (
        f"{path}: [web] base_url: must start with https:// with the {backend} backend, got "
        "'http://news.example' (RFC 8058 one-click unsubscribe needs https; http is only for "
        "127.0.0.1, localhost or ::1)"
    )


@pytest.mark.parametrize(
    ("backend", "base_url"),
    [
        ("smtp", "https://news.example"),
        ("sendgrid", "https://news.example/digest"),
        ("smtp", "http://127.0.0.1:8000"),
        ("sendgrid", "http://localhost:8000"),
        ("smtp", "http://[::1]:8000"),
        ("outbox", "http://news.example"),  # writes files: nothing a mailbox provider reads
    ],
)
def test_https_or_a_loopback_host_or_the_outbox_is_accepted(
    tmp_path: Path, backend: str, base_url: str
) -> None:
    text = MINIMAL + f'\n[delivery]\nbackend = "{backend}"\n\n[web]\nbase_url = "{base_url}"\n'
    assert load_settings(write(tmp_path, text)).web.base_url == base_url


def test_delivery_defaults_send_many_requests_at_once_in_the_backends_largest_batches(
    tmp_path: Path,
) -> None:
    delivery = load_settings(write(tmp_path, MINIMAL)).delivery
    assert delivery.concurrency == 32
    assert delivery.batch_size is None and delivery.pipeline_depth is None


@pytest.mark.parametrize(
    ("table", "concurrency", "warning"),
    [
        (
            "pipeline_depth = 4",
            4,
            "[delivery] pipeline_depth is deprecated: read as [delivery] concurrency = 4 "
            "(requests in flight per worker); rename the key",
        ),
        (
            "pipeline_depth = 4\nconcurrency = 16",
            16,
            "[delivery] pipeline_depth is deprecated and ignored: [delivery] concurrency = 16 "
            "is set (remove pipeline_depth)",
        ),
        ("concurrency = 8", 8, None),
    ],
)
def test_the_old_pipeline_depth_is_read_as_concurrency_with_a_warning(
    tmp_path: Path, table: str, concurrency: int, warning: str | None
) -> None:
    settings = load_settings(write(tmp_path, MINIMAL + f"\n[delivery]\n{table}\n"))
    assert settings.delivery.concurrency == concurrency
    assert deprecations(settings) == ([warning] if warning else [])


def test_the_old_key_from_the_environment_counts_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_DELIVERY__PIPELINE_DEPTH", "3")
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.delivery.concurrency == 3 and len(deprecations(settings)) == 1


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("concurrency = 0", "[delivery] concurrency: Input should be greater than or equal to 1"),
        ("concurrency = 1000", "[delivery] concurrency: Input should be less than or equal to 256"),
        ("pipeline_depth = 0", "[delivery] pipeline_depth: Input should be greater than or equal"),
        ("batch_size = 1001", "[delivery] batch_size: Input should be less than or equal to 1000"),
    ],
)
def test_a_bad_concurrency_or_batch_size_is_one_line(
    tmp_path: Path, table: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, MINIMAL + f"\n[delivery]\n{table}\n"))
    assert message in str(error.value) and "\n" not in str(error.value)


# --- [branding] and the templates folder (issue 13) --------------------------------------------


def test_branding_defaults_and_colours_normalised(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL + '\n[branding]\naccent = "#05A"\n'))
    assert settings.branding.accent == "#0055aa"
    assert settings.branding.palette(dark=True).surface == "#1c1f24"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('accent = "crimson"', "[branding] accent: Value error, 'crimson' is not a colour"),
        (
            'muted = "#aaaaaa"',
            "[branding] text too faint to read: muted #aaaaaa on surface #fffdf8 is 2.3:1; "
            "muted #aaaaaa on background #f3f1ea is 2.1:1",
        ),
        ('dark_accent = "#7a1c1c"', "dark_accent #7a1c1c on dark_surface #1c1f24 is 1.6:1"),
        ('button_text = "#14213d"', "button_text #14213d on button #14213d is 1.0:1"),
        ('font_body = "Arial; color: red"', "[branding] font_body: Value error, 'Arial; color"),
        ("logo_width = 700", "logo_width (700) is wider than content_width (600)"),
        ("content_width = 2000", "[branding] content_width: Input should be less than or equal"),
    ],
)
def test_a_bad_branding_key_is_one_line(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, MINIMAL + f"\n[branding]\n{toml}\n"))
    assert message in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_templates_dir_must_be_a_folder(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'sections = ["Europe", "Asia"]', 'sections = ["Europe", "Asia"]\ntemplates_dir = "mine"'
    )
    with pytest.raises(ConfigError, match=r"\[newsletter\] templates_dir: .*/mine is not a folder"):
        load_settings(write(tmp_path, text))
    (tmp_path / "mine").mkdir()
    assert load_settings(write(tmp_path, text)).newsletter.templates_dir == "mine"


def test_a_faint_colour_from_the_environment_stops_the_cli_with_one_line(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_BRANDING__DARK_MUTED", "#44474d")
    code, _, err = cli("edition", "list")
    assert code == 2
    assert "DIGEST_BRANDING__DARK_MUTED (overrides" in err
    assert "dark_muted #44474d on dark_surface #1c1f24 is 1.8:1" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("table", "key", "variable"),
    [
        ("delivery", "sendgrid_api_key", "DIGEST_SENDGRID_API_KEY"),
        ("delivery", "api_key", "DIGEST_SENDGRID_API_KEY"),
        ("delivery", "smtp_password", "DIGEST_SMTP_PASSWORD"),
        ("delivery", "password", "DIGEST_SMTP_PASSWORD"),
        ("web", "secret_key", "DIGEST_SECRET_KEY"),
        ("subscribers", "secret", "DIGEST_SECRET_KEY"),
    ],
)
def test_a_secret_in_any_table_names_its_environment_variable(
    tmp_path: Path, table: str, key: str, variable: str
) -> None:
    """Not "unknown key (check its spelling)": the key is right, the place is wrong."""
    path = write(tmp_path, MINIMAL + f'\n[{table}]\n{key} = "s3cr3t"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message == (
        f"{path}: [{table}] {key}: a secret does not belong in the config file (it is shared "
        f"and committed); set the environment variable {variable} instead"
    )
    assert "s3cr3t" not in message


def test_a_secret_at_the_top_of_the_file_names_its_variable(tmp_path: Path) -> None:
    path = write(tmp_path, 'secret_key = "s3cr3t"\n' + MINIMAL)
    with pytest.raises(
        ConfigError, match=r"secret_key: a secret does not belong .* DIGEST_SECRET_KEY"
    ):
        load_settings(path)


def test_the_public_webhook_key_is_not_taken_for_a_secret(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '\n[delivery]\nwebhook_public_key = "nope"\n')
    with pytest.raises(ConfigError, match="not a base64 DER public key"):
        load_settings(path)


def test_environment_lists_are_json_and_keys_any_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_WEB__TRUSTED_PROXIES", '["10.0.0.1"]')
    monkeypatch.setenv("digest_delivery__batch_size", "7")
    monkeypatch.setenv("DIGEST_SECRET_KEY", "k1")
    monkeypatch.setenv("DIGEST_CONFIG", "ignored.toml")  # names no setting
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.web.trusted_proxies == ["10.0.0.1"]
    assert settings.delivery.batch_size == 7
    assert settings.secret_keys() == ["k1"]


def test_a_misspelt_environment_key_is_an_unknown_key_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_DELIVERY__BACKNED", "smtp")
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, MINIMAL))
    assert "DIGEST_DELIVERY__BACKNED" in str(info.value)
    assert "[delivery] backned: unknown key (check its spelling)" in str(info.value)


def test_bad_json_in_an_environment_list_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_DELIVERY__WARMUP_DAILY", "[1000, 2000")
    with pytest.raises(ConfigError, match=r"^DIGEST_DELIVERY__WARMUP_DAILY: not valid JSON"):
        load_settings(write(tmp_path, MINIMAL))
