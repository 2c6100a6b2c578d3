"""CMP signals on the server: the TC string decoder, Consent Mode states, and the receipt
the pipeline makes from a CMP's consent beacon (the signal decides, not the claim)."""

from __future__ import annotations

import dataclasses

import pytest

from privacy import consent, tcf
from tests.conftest import Deployment
from tests.servers import cli_json, run_cli, with_store
from tests.tcf_strings import tc_string
from tracker import pipeline, useragent
from tracker.beacon import validate
from tracker.cli.sites import snippet
from tracker.errors import Invalid
from tracker.http_errors import BadRequest
from tracker.sites import check_cmp
from tracker.storage.records import DEFAULT_CMP_MAPPING, ConsentReceipt, Site, SiteSettings

VID = "a" * 32
SITE = Site(1, "key1", "shop", ("https://www.example.co.jp",), "opt-in", 0,
            SiteSettings(policy_version="v7"))  # fmt: skip
CHROME = useragent.parse(
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def test_a_published_tc_string_decodes() -> None:
    # A TCF v2.0 string (policy version 2): its header, no purposes, no publisher segment.
    tc = tcf.decode("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA")
    assert (tc.cmp_id, tc.cmp_version, tc.vendor_list_version, tc.policy_version) == (
        31, 640, 126, 2)  # fmt: skip
    assert tc.created == tc.last_updated == 1_650_492_000_000
    assert tc.purposes == frozenset()
    assert tc.publisher is None


def test_purposes_and_the_publisher_segment_round_trip() -> None:
    text = tc_string([1, 8, 24], publisher=[1, 3], cmp_id=4095, policy_version=4)
    tc = tcf.decode(text)
    assert tc.purposes == {1, 8, 24}
    assert tc.publisher == {1, 3}
    assert (tc.cmp_id, tc.policy_version, tc.vendor_list_version) == (4095, 4, 150)
    assert [tc.consents(ids) for ids in (["1", "8"], ["p1", "p3"])] == [True, True]
    assert [tc.consents(ids) for ids in (["1", "3"], ["p8"], [])] == [False, False, False]
    assert not tcf.decode(tc_string([1, 8])).consents(["p1"])  # no publisher segment


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a tc string!",
        "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA",
        "CPXxRfAP",
        "CQ.%%",
        "C" * 9000,
    ],
)
def test_malformed_tc_strings_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(Invalid) as caught:
        tcf.decode(text)
    assert text[:8] not in caught.value.message or not text


def test_consent_mode_states_map_to_purposes() -> None:
    signal = "analytics_storage=granted,ad_storage=denied,ad_user_data=granted"
    decision = consent.from_cmp("gcm", signal, DEFAULT_CMP_MAPPING)
    assert (decision.analytics, decision.marketing) == (True, False)
    states = {"analytics_storage": "granted", "ad_storage": "denied", "ad_user_data": "granted"}
    assert decision.signal == {"states": states}
    with pytest.raises(Invalid):
        consent.gcm_states("analytics_storage=maybe")


def beacon(**fields: object) -> dict[str, object]:
    return {"site": SITE.key, "type": "consent", "vid": VID,
            "consent": {"analytics": True, "marketing": True}} | fields  # fmt: skip


def receipt_of(raw: dict[str, object], site: Site = SITE) -> ConsentReceipt:
    ctx = pipeline.Context(now_ms=1_000, sites={site.key: site}, origin=None,
                           user_agent=CHROME, ip=None, new_id=lambda: "c" * 32)  # fmt: skip
    outcome = pipeline.run(ctx, validate(raw))
    assert isinstance(outcome, ConsentReceipt)
    return outcome


def test_the_tc_string_decides_whatever_the_beacon_claims() -> None:
    # The beacon claims both purposes; the TC string consents to 1 and 8 only.
    receipt = receipt_of(beacon(source="tcf", signal=tc_string([1, 8], cmp_id=42)))
    assert (receipt.source, receipt.analytics, receipt.marketing) == ("tcf", True, False)
    assert receipt.policy_version == "v7"
    assert receipt.signal is not None
    assert (receipt.signal["cmp_id"], receipt.signal["tcf_policy_version"]) == (42, 4)


def test_the_site_mapping_says_which_purposes_grant() -> None:
    mapping = dataclasses.replace(
        DEFAULT_CMP_MAPPING, tcf_analytics=("p1",), tcf_marketing=("p1", "p4")
    )
    site = dataclasses.replace(SITE, settings=SiteSettings(cmp=mapping))
    signal = tc_string([1, 3, 4, 5, 8], publisher=[1])
    receipt = receipt_of(beacon(source="tcf", signal=signal), site)
    assert (receipt.analytics, receipt.marketing) == (True, False)


def test_the_page_own_consent_is_a_banner_receipt() -> None:
    receipt = receipt_of(beacon())
    assert (receipt.source, receipt.analytics, receipt.signal) == ("banner", True, None)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"source": "tcf", "signal": "garbage!"}, "events[0].signal"),
        ({"source": "tcf"}, "events[0].signal"),
        ({"source": "onetrust", "signal": "x"}, "events[0].source must be one of tcf, gcm"),
        ({"source": "gcm", "signal": "ad_storage=yes"}, "events[0].signal"),
    ],
)
def test_bad_cmp_signals_are_a_400_naming_the_field(fields: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        validate(beacon(**fields))
    assert message in str(caught.value)


def test_a_signal_belongs_only_to_a_consent_beacon() -> None:
    with pytest.raises(BadRequest):
        validate(beacon(type="pageview", url="https://www.example.co.jp/", source="gcm",
                        signal="analytics_storage=granted"))  # fmt: skip


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"signals": ("onetrust",)}, "cmp must be one of tcf, gcm"),
        ({"tcf_analytics": ("25",)}, "TCF analytics purposes"),
        ({"tcf_marketing": ()}, "TCF marketing purposes"),
        ({"gcm_analytics": ("Analytics Storage",)}, "Consent Mode analytics"),
    ],
)
def test_a_site_mapping_that_could_not_grant_is_refused(
    mapping: dict[str, tuple[str, ...]], message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        check_cmp(dataclasses.replace(DEFAULT_CMP_MAPPING, **mapping))  # type: ignore[arg-type]
    assert message in caught.value.message


def test_the_snippet_carries_the_adapter_and_its_mapping() -> None:
    mapping = check_cmp(dataclasses.replace(DEFAULT_CMP_MAPPING, signals=("tcf", "tcf")))
    site = dataclasses.replace(SITE, settings=SiteSettings(cmp=mapping))
    text = snippet(site, "https://t.example.co.jp/t.js")
    adapter = '<script async src="https://t.example.co.jp/cmp.js" data-tcf-analytics="1,8"'
    assert text.endswith(f'{adapter} data-tcf-marketing="1,3,5"></script>')
    assert "cmp.js" not in snippet(SITE, "https://t.example.co.jp/t.js")


def test_site_cmp_changes_the_mapping_audited_and_prints_the_snippet(
    deployment: Deployment,
) -> None:
    env, key = deployment.env, deployment.site_key
    changed = cli_json(env, "site", "cmp", key, "--cmp", "gcm", "--gcm-marketing", "ad_storage")
    assert changed["cmp"]["signals"] == ["gcm"]
    assert 'data-gcm-marketing="ad_storage"></script>' in changed["snippet"]
    listed = cli_json(env, "site", "list")["sites"]
    assert [s["cmp"]["gcm_marketing"] for s in listed if s["site_key"] == key] == [["ad_storage"]]
    rows = with_store(deployment.database_url, lambda s: s.audit_page(after=0, limit=1000))
    assert [r.detail for r in rows if r.action == "site.cmp"][-1] == {"signals": ["gcm"]}
    refused = run_cli(env, "site", "cmp", key, "--tcf-analytics", "99", check=False)
    assert refused.returncode == 2
    assert "TCF analytics purposes" in refused.stderr
