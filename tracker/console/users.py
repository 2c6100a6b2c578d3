"""Admin's user page: the same accounts as ``ashiato user``: add (one-time password
shown once), disable, reset."""

from __future__ import annotations

from starlette.responses import Response

from tracker.console.access import site_choice
from tracker.console.accounts import ROLES
from tracker.console.web import Console, page
from tracker.errors import Invalid, NotFound
from tracker.scope import site_ids


@page("admin")
async def users_page(console: Console) -> Response:
    accounts = console.accounts
    shown: tuple[str, str] | None = None  # (email, one-time password)
    if console.request.method == "POST":
        fields = console.form
        action = fields.get("action")
        if action == "add":
            sites = await site_ids(console.services.store, fields.getlist("site"))
            account, password = await accounts.add(
                fields.get("email"), fields.get("role"), now=console.clock.now_ms, sites=sites
            )
            await console.audit("console.user.add", account.user.id, role=account.user.role,
                                sites=list(sites))  # fmt: skip
            shown = (account.email, password)
        else:
            user = await console.services.store.console_user(fields.get("user"))
            if user is None:
                raise NotFound("no such user")
            if user.id == console.user_id:
                raise Invalid("use the account page (or another admin) for your own account")
            if action == "disable":
                await accounts.disable(user, now=console.clock.now_ms)
            elif action == "reset":
                shown = ((await accounts.opened(user)).email, await accounts.reset(user))
            else:
                raise Invalid("unknown action")
            await console.audit(f"console.user.{action}", user.id)
    everyone = await accounts.all()
    return console.render("users.html", users=everyone, roles=ROLES, shown=shown,
                          **await site_choice(console))  # fmt: skip
