"""First and last touch: the campaign data of the visits that brought a lead.

Pure rules, applied by the store inside the transaction that links a visitor
(``identity.stitching.Rules``), once it is decided which of the visitor's page views the
link gives the lead:

* a visitor's touches are its first page view and the landing page of its latest
  session, among the page views the link covers (a shared computer's earlier person's
  landing page is not this person's first touch);
* a lead's first touch is the earliest of its visitors' first touches, its last touch
  the latest of their last touches (on a tie, the one folded in last).
"""

from __future__ import annotations

from collections.abc import Sequence

from tracker.storage.records import Event, Touch


def touch_of(event: Event) -> Touch:
    return {
        "at": event.at,
        "landing_page": event.url,
        "referrer": event.referrer,
        "utm_source": event.utm_source,
        "utm_medium": event.utm_medium,
        "utm_campaign": event.utm_campaign,
    }


def touches(events: Sequence[Event], since: int) -> tuple[Touch, Touch] | None:
    """The first and last touch among ``events`` (oldest first) from ``since`` on."""
    views = [e for e in events if e.type == "pageview" and e.at >= since]
    if not views:
        return None
    latest_session = views[-1].sid
    landing = next((e for e in views if e.sid == latest_session), views[-1])
    return touch_of(views[0]), touch_of(landing)


def fold(
    first: Touch | None, last: Touch | None, touches: tuple[Touch, Touch]
) -> tuple[Touch | None, Touch | None]:
    """The lead's first and last touch once a visitor's ``touches`` are folded in."""
    new_first, new_last = touches
    if new_first and (not first or new_first.get("at", 0) < first.get("at", 0)):
        first = new_first
    if new_last and (not last or new_last.get("at", 0) >= last.get("at", 0)):
        last = new_last
    return first or None, last or None
