from __future__ import annotations

import pytest

from tracker import useragent


@pytest.mark.parametrize(
    ("ua", "browser", "os", "device"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome",
            "Windows",
            "desktop",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Mobile Safari",
            "iOS",
            "mobile",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Mobile Safari",
            "iOS",
            "tablet",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome Mobile",
            "Android",
            "mobile",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.0 Safari/605.1.15",
            "Safari",
            "Mac OS X",
            "desktop",
        ),
    ],
)
def test_browsers_are_classified(ua: str, browser: str, os: str, device: str) -> None:
    info = useragent.parse(ua)
    assert (info.browser, info.os, info.device) == (browser, os, device)
    assert not info.is_bot


@pytest.mark.parametrize(
    "ua",
    [
        "",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/131.0 Safari/537.36",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "Mozilla/5.0 " + "x" * 600,
    ],
)
def test_bots_and_scripts_are_bots(ua: str) -> None:
    assert useragent.parse(ua).is_bot


def test_the_split_resolver_answers_as_uap_cores_reference_parser() -> None:
    # The browser comes from the Rust resolver, OS and device from the Python one over the
    # same rules; together they answer as ua_parser's own default parser does.
    import ua_parser

    from tracker.useragent import _rules

    samples = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
        " AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"
        " AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)"
        " AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X)"
        " AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8)"
        " AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; SM-X700)"
        " AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 9; KFTRWI)"
        " AppleWebKit/537.36 (KHTML, like Gecko) Silk/118.3.1"
        " like Chrome/118.0.5993.117 Safari/537.36",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (Linux; Android 7.0;)"
        " AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible;"
        " PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 14_0 like Mac OS X)"
        " AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.0 Mobile/15E148"
        " Safari/604.1 (compatible; AdsBot-Google-Mobile;"
        " +http://www.google.com/mobile/adsbot.html)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
        " AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "DoCoMo/2.0 N905i(c100;TB;W24H16)"
        " (compatible; Googlebot-Mobile/2.1; +http://www.google.com/bot.html)",
    ]
    for sample in samples:
        assert _rules().parse(sample) == ua_parser.parse(sample), sample
