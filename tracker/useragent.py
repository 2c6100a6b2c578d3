"""User-agent enrichment: the only importer of the UA parser.

``ua_parser`` 1.x with uap-core's rules. The browser comes from the Rust resolver
(``ua-parser-rs``, ~0.02 ms per new string, where Python's ``re`` takes ~1 ms). The OS
and the device come from the pure-Python resolver over the same rules (~0.02 ms and
~0.2 ms per new string): the Rust one compiles every pattern up front, 2.5 MiB for the
OS and 14 MiB for the 633 device patterns — a sixth of the collector's memory — for the
one device answer used here (is it a spider, an iPad, an iPhone). On top, a bounded LRU
keyed by the raw string makes the common case — the same few hundred browsers over and
over — a dictionary hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ua_parser import Domain, Parser, PartialResult, basic, load_builtins, regex

from tracker.memo import Memo

# Automation and crawlers that announce themselves, plus HTTP libraries. Real browsers
# all start with "Mozilla/"; anything else on /collect is a script.
_BOT_WORDS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|scrap|headless|phantomjs|lighthouse|pingdom|"
    r"uptime|monitor|preview|facebookexternalhit|python|curl|wget|java/|go-http|okhttp|"
    r"axios|node-fetch|httpclient|libwww",
    re.IGNORECASE,
)
_MAX_UA_LENGTH = 512


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device: str
    """``desktop``, ``mobile``, ``tablet`` or ``bot``."""

    @property
    def is_bot(self) -> bool:
        return self.device == "bot"


BOT = UserAgentInfo(None, None, None, None, "bot")


class _Resolver:
    """The browser by the Rust resolver, OS and device by the Python one (see above)."""

    def __init__(self) -> None:
        agents, systems, devices = load_builtins()
        self._fast = regex.Resolver((agents, [], []))
        self._small = basic.Resolver(([], systems, devices))

    def __call__(self, user_agent: str, domains: Domain, /) -> PartialResult:
        fast = self._fast(user_agent, domains & Domain.USER_AGENT)
        small = self._small(user_agent, domains & (Domain.OS | Domain.DEVICE))
        return PartialResult(domains, fast.user_agent, small.os, small.device, user_agent)


@lru_cache(maxsize=1)
def _rules() -> Parser:
    return Parser(_Resolver())


_SEEN: Memo[str, UserAgentInfo] = Memo(2 << 20, len)
"""Parsed user agents: 2 MiB, ~3,000 to ~20,000 strings (they are at most 512 long)."""


def warm_up() -> None:
    """Build the parser now (it loads its rules lazily, ~0.2 s) instead of on a request."""
    _classify("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/1.0")


def parse(user_agent: str) -> UserAgentInfo:
    """Classify ``user_agent``; cached, so repeated strings cost a dictionary lookup."""
    if not user_agent or len(user_agent) > _MAX_UA_LENGTH:
        return BOT
    found = _SEEN.get(user_agent)
    if found is None:
        found = _classify(user_agent)
        _SEEN.put(user_agent, found)
    return found


def _classify(user_agent: str) -> UserAgentInfo:
    if not user_agent.startswith("Mozilla/") or _BOT_WORDS.search(user_agent):
        return BOT
    result = _rules().parse(user_agent)
    device = result.device
    if device is not None and device.family == "Spider":
        return BOT
    ua, os_ = result.user_agent, result.os
    return UserAgentInfo(
        browser=ua.family if ua else None,
        browser_version=ua.major if ua else None,
        os=os_.family if os_ else None,
        os_version=os_.major if os_ else None,
        device=_device_class(user_agent, device.family if device else None),
    )


def _device_class(user_agent: str, family: str | None) -> str:
    if family == "iPad" or "Tablet" in user_agent:
        return "tablet"
    if "Android" in user_agent:
        return "mobile" if "Mobile" in user_agent else "tablet"
    if "Mobi" in user_agent or family in ("iPhone", "iPod"):
        return "mobile"
    return "desktop"
