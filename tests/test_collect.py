"""The collector endpoints against a real server and a real SQLite file."""

from __future__ import annotations

import httpx

from tests.conftest import SITE_ORIGIN, Deployment
from tests.servers import CHROME_UA, metric, with_store


def stored(dep: Deployment, vid: str) -> list:
    return with_store(dep.database_url, lambda store: store.visitor_events(vid))


def test_single_pageview_is_enriched_scrubbed_and_stored(deployment: Deployment) -> None:
    beacon = deployment.beacon(
        url=f"{SITE_ORIGIN}/pricing?utm_source=mail&utm_campaign=spring&email=a%40b.jp&gclid=G1",
        referrer="https://www.google.com/search?q=ashiato",
    )
    response = deployment.post(beacon, **{"X-Forwarded-For": "198.51.100.7"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SITE_ORIGIN
    [event] = stored(deployment, beacon["vid"])
    assert event.url == f"{SITE_ORIGIN}/pricing?utm_source=mail&utm_campaign=spring&gclid=G1"
    assert (event.utm_source, event.utm_campaign) == ("mail", "spring")
    assert event.click_ids == {"gclid": "G1"}
    assert (event.browser, event.os, event.device) == ("Chrome", "Windows", "desktop")
    # No trusted proxy is configured, so X-Forwarded-For is ignored; stored truncated.
    assert event.ip == "127.0.0.0"
    assert event.title == "Pricing"


def test_batch_is_stored_in_order_with_waiting_time_kept(deployment: Deployment) -> None:
    vid = deployment.beacon()["vid"]
    events = [
        deployment.beacon(vid=vid, ts=1_000, sent=61_000),
        deployment.beacon(
            vid=vid, type="event", name="signup", props={"plan": "pro"}, ts=60_000, sent=61_000
        ),
    ]
    assert deployment.post({"events": events}).status_code == 204
    first, second = stored(deployment, vid)
    assert (first.type, second.type, second.name, second.props) == (
        "pageview",
        "event",
        "signup",
        {"plan": "pro"},
    )
    # Server time, shifted back by how long each event waited in the browser.
    assert 58_000 <= second.at - first.at <= 60_000


def test_drops_are_counted_not_stored(deployment: Deployment) -> None:
    bot = deployment.beacon()
    foreign = deployment.beacon()
    unknown = deployment.beacon(site="no-such-site")
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    assert deployment.post(bot, **{"User-Agent": googlebot}).status_code == 204
    assert deployment.post(foreign, Origin="https://evil.example").status_code == 204
    assert deployment.post(unknown).status_code == 204
    for beacon in (bot, foreign, unknown):
        assert stored(deployment, beacon["vid"]) == []
    for reason in ("bot", "foreign_origin", "unknown_site"):
        assert metric(deployment.url, f'ashiato_events_dropped_total{{reason="{reason}"}}') >= 1


def test_foreign_origin_gets_no_cors_headers(deployment: Deployment) -> None:
    response = deployment.post(deployment.beacon(), Origin="https://evil.example")
    assert "access-control-allow-origin" not in response.headers
    preflight = httpx.options(
        f"{deployment.url}/collect",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 403
    allowed = httpx.options(
        f"{deployment.url}/collect",
        headers={"Origin": SITE_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SITE_ORIGIN


def test_pixel_records_a_pageview_from_query(deployment: Deployment) -> None:
    vid = deployment.beacon()["vid"]
    response = httpx.get(
        f"{deployment.url}/p.gif",
        params={"site": deployment.site_key, "vid": vid, "url": f"{SITE_ORIGIN}/mail?tel=0312"},
        headers={"User-Agent": CHROME_UA},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    [event] = stored(deployment, vid)
    assert event.url == f"{SITE_ORIGIN}/mail"


def test_pixel_with_bad_input_is_400(deployment: Deployment) -> None:
    response = httpx.get(
        f"{deployment.url}/p.gif", params={"site": deployment.site_key, "vid": "nothex"}
    )
    assert response.status_code == 400
    assert "vid" in response.json()["error"]


def test_tag_is_served_with_etag_gzip_and_long_cache(deployment: Deployment) -> None:
    plain = httpx.get(f"{deployment.url}/t.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("application/javascript")
    assert "max-age=86400" in plain.headers["cache-control"]
    zipped = httpx.get(f"{deployment.url}/t.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(plain.content)
    assert zipped.content == plain.content  # httpx inflated it
    for etag, encoding in ((plain.headers["etag"], "identity"), (zipped.headers["etag"], "gzip")):
        again = httpx.get(
            f"{deployment.url}/t.js", headers={"If-None-Match": etag, "Accept-Encoding": encoding}
        )
        assert again.status_code == 304
        assert again.content == b""


def test_health_readiness_and_metrics(deployment: Deployment) -> None:
    assert httpx.get(f"{deployment.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{deployment.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"
    deployment.post(deployment.beacon())
    metrics = httpx.get(f"{deployment.url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    for name in (
        "ashiato_events_accepted_total",
        "ashiato_writer_queue_depth",
        "ashiato_writer_batch_size_bucket",
        "ashiato_writer_commit_seconds_count",
    ):
        assert name in text
    assert metric(deployment.url, "ashiato_events_accepted_total") >= 1
