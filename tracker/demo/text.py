"""The demo pages' words, in English and Japanese (the people who try ashiato read
either). Values are ``str.format`` templates: their fields are escaped by the caller."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("en", "ja")

TEXT: Mapping[str, tuple[str, str]] = {
    "title": ("ashiato demo", "ashiato デモ"),
    "intro": (
        "This page carries the tag for site <code>{name}</code> (consent mode "
        "<em>notice</em>). Browse a little, then send the form: the browsing you did "
        "anonymously becomes the history of a lead.",
        "このページにはサイト <code>{name}</code> のタグ（同意モード <em>notice</em>）が"
        "入っています。少し閲覧してからフォームを送信すると、匿名で閲覧した履歴がリードの"
        "履歴になります。",
    ),
    "see_me": (
        "See what the server holds about this browser",
        "このブラウザについてサーバーが保持している内容",
    ),
    "stop": (".", "。"),
    "page_views": ("page views", "ページビュー"),
    "outbound": ("an outbound link", "外部リンク"),
    "download": ("a download", "ダウンロード"),
    "custom": ("Send a custom event", "カスタムイベントを送信"),
    "contact": ("Contact us", "お問い合わせ"),
    "email": ("Email", "メールアドレス"),
    "name": ("Name", "氏名"),
    "company": ("Company", "会社名"),
    "password": ("Password (never read by the tag)", "パスワード（タグは読み取りません）"),
    "send": ("Send", "送信"),
    "snippet": (
        "The snippet this page carries (<code>ashiato site add</code> prints the same for "
        "your own site):",
        "このページに入っているスニペット（自分のサイト用には <code>ashiato site add</code> が"
        "同じものを出力します）:",
    ),
    "console": (
        'The console: <a href="/admin/">/admin/</a> (the sign-in <code>make run</code> printed).',
        '管理コンソール: <a href="/admin/">/admin/</a>（<code>make run</code> が表示した'
        "サインイン情報で）。",
    ),
    "no_site": (
        "No site named <code>demo</code> yet: run <code>make run</code>.",
        "<code>demo</code> という名前のサイトがまだありません: <code>make run</code> を"
        "実行してください。",
    ),
    "held": ("What the server holds", "サーバーが保持している内容"),
    "no_vid": (
        'No visitor id yet: open <a href="/demo/">the demo page</a> first.',
        '訪問者IDがまだありません: 先に<a href="/demo/">デモページ</a>を開いてください。',
    ),
    "vid": (
        "Visitor id (cookie <code>_ashiato_vid</code>):",
        "訪問者ID（Cookie <code>_ashiato_vid</code>）:",
    ),
    "linked": (
        "Linked to lead <code>{lead}</code> (evidence <em>{evidence}</em>): {person} — "
        "stored only as ciphertext under the lead's own key.",
        "リード <code>{lead}</code> に紐付きました（根拠 <em>{evidence}</em>）: {person} — "
        "リードごとの鍵で暗号化してのみ保存しています。",
    ),
    "in_console": (
        'The console shows it under <a href="{href}">Leads</a>.',
        '管理コンソールの<a href="{href}">リード</a>で確認できます。',
    ),
    "events": ("{count} events", "イベント {count} 件"),
    "back": ("back to the demo page", "デモページに戻る"),
    "not_linked": (
        "The form's identification has not arrived within {seconds} seconds; reload this "
        "page in a moment.",
        "フォームによる識別が {seconds} 秒以内に届きませんでした。少し待ってからこのページを"
        "再読み込みしてください。",
    ),
    "dropped_here": (
        "Why events from this browser are dropped",
        "このブラウザのイベントが破棄される理由",
    ),
    "dropped_server": (
        "Events this server dropped since it started (every visitor; also at "
        '<a href="/metrics">/metrics</a>): {counts}.',
        'このサーバーが起動後に破棄したイベント（全訪問者。<a href="/metrics">/metrics</a> '
        "にも表示）: {counts}。",
    ),
    "no_events": (
        "No events yet and no reason to drop them: if the demo page was open a moment ago, "
        "the tag did not load (is a content blocker stopping <code>/t.js</code>?).",
        "イベントがまだなく、破棄される理由も見当たりません。デモページを開いた直後であれば、"
        "タグが読み込まれていません（コンテンツブロッカーが <code>/t.js</code> を止めて"
        "いませんか？）。",
    ),
    "bot": (
        "Your browser's user agent (<code>{ua}</code>) counts as a bot or a headless "
        "browser, so the collector drops its events (reason <code>bot</code>). Use an "
        "ordinary browser, or give your automation an ordinary user agent.",
        "このブラウザのユーザーエージェント（<code>{ua}</code>）はボットまたはヘッドレス"
        "ブラウザと判定されるため、イベントは破棄されます（理由 <code>bot</code>）。通常の"
        "ブラウザを使うか、自動操作には通常のユーザーエージェントを設定してください。",
    ),
    "foreign_origin": (
        "This page's origin <code>{origin}</code> is not one of the demo site's origins "
        "({origins}), so the collector drops its events (reason <code>foreign_origin</code>). "
        "Run <code>.venv/bin/ashiato demo --origin {origin}</code> and reload.",
        "このページのオリジン <code>{origin}</code> はデモサイトのオリジン（{origins}）に"
        "含まれないため、イベントは破棄されます（理由 <code>foreign_origin</code>）。"
        "<code>.venv/bin/ashiato demo --origin {origin}</code> を実行してから再読み込みして"
        "ください。",
    ),
    "no_consent": (
        "This browser refused analytics on this site, so the collector drops its events "
        "(reason <code>no_consent</code>).",
        "このブラウザはこのサイトでアクセス解析を拒否したため、イベントは破棄されます"
        "（理由 <code>no_consent</code>）。",
    ),
    "no_marketing_consent": (
        "This browser has not granted marketing consent, so the form does not identify it "
        "(reason <code>no_marketing_consent</code>): its page views are kept, no lead is made.",
        "このブラウザはマーケティングへの同意をしていないため、フォームで識別されません"
        "（理由 <code>no_marketing_consent</code>）。ページビューは記録されますが、リードは"
        "作られません。",
    ),
    "gpc": (
        "Your browser sends Global Privacy Control: the tag does not identify it from the "
        "form unless the visitor grants marketing explicitly.",
        "このブラウザは Global Privacy Control を送信しているため、訪問者が明示的に"
        "マーケティングに同意しない限り、タグはフォームから識別しません。",
    ),
    "unsigned_identify": (
        "The demo site accepts signed identification only, so the form's is dropped "
        "(reason <code>unsigned_identify</code>).",
        "デモサイトは署名付きの識別のみ受け付けるため、フォームによる識別は破棄されます"
        "（理由 <code>unsigned_identify</code>）。",
    ),
}


def pick_language(query: str | None, accept_language: str) -> str:
    """``?lang=`` first, then the first of ``Accept-Language`` we have, else English."""
    if query in LANGUAGES:
        return query
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return "en"


def say(language: str, key: str, **fields: str) -> str:
    """The message in ``language``; ``fields`` must already be escaped."""
    english, japanese = TEXT[key]
    template = japanese if language == "ja" else english
    return template.format(**fields) if fields else template
