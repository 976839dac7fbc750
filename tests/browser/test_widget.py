"""The web widget in real headless Chromium, against the product as it runs in production
(uvicorn + a Celery worker, the test database, FakeOpenAI as the model): see
tests/browser/widget_live.py for the stack and the shops that embed the widget.

Every test uses fresh browser contexts of one Chromium (module-scoped) and checks the console
of every page it opened: no uncaught exception and no console error or warning, except the
browser's own line about a request the test makes fail on purpose, allowed precisely.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.widget_live import (
    OFFLINE,
    Console,
    Widget,
    WidgetStack,
    last_user_text,
    reply_for,
    streamed_texts,
    wait_until,
)

# django_db only gets the test database created (see tests/browser/conftest.py): everything
# the servers see is committed, and the tests read it back through `committed`.
pytestmark = [pytest.mark.browser, pytest.mark.django_db]

XSS_SCRIPT = "<script>window.__pwned=1</script>"
XSS_IMG = '<img src=x onerror="window.__pwned=1">'


# -- helpers ------------------------------------------------------------------------------------


def shop(
    new_context: Callable[..., Any], stack: WidgetStack, company: Any = None, **options: Any
) -> tuple[Any, Widget]:
    """A page of `company`'s shop (A by default) with the widget drawn (launcher visible)."""
    from playwright.sync_api import expect

    company = company or stack.a
    page = new_context(**options).new_page()
    page.goto(stack.pages.url(f"shop-{company.label}", "/", company.key))
    widget = Widget(page, language=options.get("locale", "es-ES")[:2])
    expect(widget.hook("launcher")).to_be_visible()
    return page, widget


def probe_socket(page: Any, url: str) -> dict[str, Any]:
    """Open a websocket to `url` from `page` (its origin), as any script of that page could;
    return the frames received and how it was closed."""
    return page.evaluate(
        """(url) => new Promise((resolve) => {
          const frames = [];
          const ws = new WebSocket(url);
          ws.onmessage = (e) => frames.push(JSON.parse(e.data));
          ws.onclose = (e) => resolve({code: e.code, frames});
          setTimeout(() => resolve({code: null, frames}), 8000);
        })""",
        url,
    )


def ids_unique(widget: Widget) -> list[int]:
    ids = [m["id"] for m in widget.messages() if m["id"] is not None]
    assert len(ids) == len(set(ids)), f"a message is shown twice: {widget.messages()}"
    return ids


# -- tests ---------------------------------------------------------------------------------------


def test_snippet_on_another_origin_streams_the_answer_and_keeps_history(
    stack: WidgetStack, new_context: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    stack.fake.latency_ms = 300  # the typing indicator shows until the first words arrive
    question = "¿Cuánto cuesta el seguro de auto?"
    answer = reply_for(question, words=40)
    stack.fake.responder = lambda body: reply_for(last_user_text(body), words=40)
    page, widget = shop(new_context, stack)

    # The widget draws on the shop's origin, talks to the product's: the key allows the shop.
    assert page.evaluate("location.origin") == stack.a.origin
    launcher = widget.hook("launcher")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    widget.open()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(widget.hook("panel")).to_have_attribute("aria-label", f"Chat con {stack.a.bot_name}")
    assert widget.messages() == [
        {"role": "welcome", "state": "done", "id": None, "text": stack.a.welcome}
    ]

    widget.trace_start()
    widget.send(question)
    replies = widget.wait_replies(1)
    assert [(m["role"], m["state"], m["text"]) for m in replies] == [
        ("welcome", "done", stack.a.welcome),
        ("visitor", "sent", question),
        ("assistant", "done", answer),
    ]
    visitor_id, reply_id = replies[1]["id"], replies[2]["id"]
    assert visitor_id < reply_id

    # It streamed: typing dots first, then a growing partial text, then the final text.
    trace = widget.trace()
    first_text = next(i for i, row in enumerate(trace) if row["replies"])
    assert any(row["typing"] for row in trace[:first_text]), trace[:first_text]
    streamed = streamed_texts(trace, reply_id)
    assert all(text and answer.startswith(text) for text in streamed), streamed
    for before, after in itertools.pairwise(streamed):
        assert after.startswith(before), streamed
    partial = {text for text in streamed if text != answer}
    assert len(partial) >= 3, f"no visible streaming: {streamed}"
    assert trace[-1]["replies"] == [[reply_id, "done", answer]]
    assert not trace[-1]["typing"]

    # A reload shows the history: the same messages, once each, in order.
    before = widget.messages()
    page.reload()
    expect(launcher).to_be_visible()
    widget.open()
    expect(widget.hook("message")).to_have_count(3)
    assert widget.messages() == before
    assert ids_unique(widget) == [visitor_id, reply_id]


def test_server_restart_mid_answer_delivers_every_message_exactly_once(
    stack: WidgetStack, new_context: Callable[..., Any], console: Console
) -> None:
    from playwright.sync_api import expect

    first, offline = "Primera pregunta, larga", "Escrita sin conexión"
    answers = {first: reply_for(first, words=90), offline: reply_for(offline)}
    stack.fake.responder = lambda body: answers[last_user_text(body)]
    page, widget = shop(new_context, stack)
    widget.open()
    status = widget.hook("status")

    widget.send(first)
    # Mid-answer: part of the reply is shown...
    streaming = widget.hook("message").and_(page.locator('[data-state="streaming"]'))
    expect(streaming).to_have_count(1)
    partial = streaming.inner_text().strip()
    assert partial and answers[first].startswith(partial) and partial != answers[first]

    # ... when the server goes away. The worker keeps writing the reply and stores it.
    console.allow(
        "error",
        re.escape(f"WebSocket connection to '{stack.socket_url(stack.a.key)}' failed: ")
        + r"Error in connection establishment: net::ERR_CONNECTION_REFUSED",
    )
    stopped_at = time.time()
    assert stack.stop_uvicorn() == []
    expect(status).to_have_text(OFFLINE["es"])

    # A message typed while the server is down waits for it.
    widget.send(offline)
    pending = widget.hook("message").and_(page.locator('[data-role="visitor"]')).last
    expect(pending).to_have_text(offline)
    expect(pending).to_have_attribute("data-state", "sending")

    stack.start_uvicorn()  # same port
    widget.wait_online(timeout=20_000)
    widget.wait_replies(2, timeout=20_000)
    expected = [
        ("visitor", first),
        ("assistant", answers[first]),
        ("visitor", offline),
        ("assistant", answers[offline]),
    ]
    assert widget.conversation() == expected
    ids_unique(widget)
    shown = [m["text"] for m in widget.messages()]
    for _, text in expected:
        assert shown.count(text) == 1, shown

    # The database holds exactly those messages, once each; the first reply was finished by
    # the worker after the server had gone.
    stored = stack.conversation(stack.a, widget.session_id(stack.a.key))
    assert stored is not None
    assert [(m.role, m.text) for m in stored.messages] == expected
    assert [m.status for m in stored.messages] == ["received", "completed"] * 2
    assert stored.messages[1].completed_at.timestamp() > stopped_at
    assert [m["id"] for m in widget.messages()[1:]] == [m.id for m in stored.messages]
    # Each visitor message was answered once: one model call each.
    asked = [last_user_text(body) for body in stack.chat_requests(stack.a)]
    assert asked == [first, offline]


def test_markup_in_messages_renders_as_inert_text(
    stack: WidgetStack, new_context: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    visitor_text = f"Hola {XSS_SCRIPT} y {XSS_IMG}"
    answer = f"Mira esto: {XSS_IMG} y también {XSS_SCRIPT} **fin**"
    stack.fake.responder = lambda body: answer
    page, widget = shop(new_context, stack)
    widget.open()
    widget.send(visitor_text)
    widget.wait_replies(1)

    assert widget.conversation() == [
        ("visitor", visitor_text),
        ("assistant", answer.replace("**fin**", "fin")),  # bold is the only markup
    ]
    messages = widget.hook("messages")
    expect(messages.locator("strong")).to_have_text("fin")
    assert messages.locator("img, script, iframe, svg, [onerror]").count() == 0
    # Nothing ran, not even after the image would have failed to load.
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    # The page itself has no foreign element either.
    assert page.locator("img").count() == 0


def test_key_refused_on_an_origin_it_does_not_allow(
    stack: WidgetStack, new_context: Callable[..., Any], console: Console
) -> None:
    config_url = stack.config_url(stack.a.key)
    console.allow(
        "error",
        re.escape("Failed to load resource: the server responded with a status of 403 (Forbidden)"),
        url=config_url,
    )
    warning = re.escape(f"ChapiAssistant: widget key {stack.a.key} refused (origin_not_allowed). ")
    console.allow("warning", warning + ".*")
    page = new_context().new_page()
    # A's key, copied onto a site A never allowed.
    with page.expect_response(lambda r: r.url == config_url) as response:
        page.goto(stack.pages.url("evil", "/", stack.a.key))
    assert response.value.status == 403
    assert response.value.json()["error"]["code"] == "origin_not_allowed"

    # Nothing drawn; one warning in the console.
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-chapi-widget]").count() == 0
    assert page.locator('[data-chapi="launcher"]').count() == 0
    assert len(console.matching("warning", warning + ".*")) == 1

    # The websocket refuses that origin too, with 4403.
    probe = probe_socket(page, stack.socket_url(stack.a.key))
    assert probe["code"] == 4403
    assert [f["code"] for f in probe["frames"]] == ["origin_not_allowed"]
    # Nor may that site use B's key.
    assert probe_socket(page, stack.socket_url(stack.b.key))["code"] == 4403


def test_revoked_key_is_refused_live_and_for_new_visitors(
    stack: WidgetStack, new_context: Callable[..., Any], console: Console
) -> None:
    from playwright.sync_api import expect

    key = stack.key_create(stack.a, [stack.a.origin])
    shop_url = stack.pages.url("shop-a", "/", key)
    page = new_context().new_page()
    sockets: list[Any] = []
    received: list[str] = []

    def opened(socket: Any) -> None:
        sockets.append(socket)
        socket.on("framereceived", lambda payload: received.append(str(payload)))

    page.on("websocket", opened)
    page.goto(shop_url)
    widget = Widget(page)
    widget.open()
    widget.send("Hola")
    widget.wait_replies(1)
    assert len(sockets) == 1

    # Revoked while the visitor is here: the open connection is refused (the server says why
    # and closes it with 4401), the widget says so and does not try again.
    stack.key_revoke(key)
    expect(widget.hook("error")).to_have_text("Este chat no está disponible.")
    expect(widget.hook("input")).to_be_disabled()
    expect(widget.hook("status")).to_have_text("")
    wait_until(lambda: received and "revoked_widget_key" in received[-1], timeout=5)
    assert json.loads(received[-1]) == {
        "type": "error",
        "code": "revoked_widget_key",
        "message": "This chat is not available.",
    }
    wait_until(sockets[0].is_closed, timeout=5)
    assert sockets[0].is_closed()
    page.wait_for_timeout(1500)  # the first retry would come after 0.35-0.65 s
    assert len(sockets) == 1

    # Back on the shop within a minute, the launcher may be drawn from the settings the
    # browser keeps (Cache-Control: max-age=60), but the chat stays refused.
    page.goto(shop_url)
    expect(widget.hook("launcher")).to_be_visible()
    widget.hook("launcher").click()
    expect(widget.hook("error")).to_have_text("Este chat no está disponible.")
    expect(widget.hook("input")).to_be_disabled()
    assert widget.conversation() == []

    # A new visitor gets nothing drawn: the settings are refused (403 revoked_widget_key)...
    config_url = stack.config_url(key)
    console.allow(
        "error",
        re.escape("Failed to load resource: the server responded with a status of 403 (Forbidden)"),
        url=config_url,
    )
    warning = re.escape(f"ChapiAssistant: widget key {key} refused (revoked_widget_key). ") + ".*"
    console.allow("warning", warning)
    page = new_context().new_page()
    with page.expect_response(lambda r: r.url == config_url) as response:
        page.goto(stack.pages.url("shop-a", "/", key))
    assert response.value.status == 403
    assert response.value.json()["error"]["code"] == "revoked_widget_key"
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-chapi-widget]").count() == 0
    assert len(console.matching("warning", warning)) == 1
    # ... and so is the websocket, from the origin the key allowed: 4401.
    probe = probe_socket(page, stack.socket_url(key))
    assert probe["code"] == 4401
    assert [f["code"] for f in probe["frames"]] == ["revoked_widget_key"]


def test_iframe_embed_sends_and_receives(
    stack: WidgetStack, new_context: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    page = new_context().new_page()
    embed_url = f"http://{stack.a.slug}.localhost:{stack.port}/embed?token={stack.a.key}"
    with page.expect_response(embed_url) as response:
        page.goto(stack.pages.url("shop-a", "/frame", stack.a.key))
    # Only the key's sites (and the company's own hosts) may frame the chat.
    policy = response.value.headers["content-security-policy"]
    assert stack.a.origin in policy.split()
    frame = wait_until(lambda: page.frame(url=embed_url))
    assert frame is not None
    widget = Widget(frame)
    # Full-frame: no launcher, the chat is open at once.
    expect(widget.hook("panel")).to_be_visible()
    assert widget.hook("launcher").count() == 0
    widget.wait_online()
    box = widget.hook("panel").bounding_box()
    assert (round(box["width"]), round(box["height"])) == (400, 600)

    question = "Hola desde el iframe"
    widget.send(question)
    widget.wait_replies(1)
    assert widget.conversation() == [("visitor", question), ("assistant", reply_for(question))]


@pytest.mark.parametrize(
    ("locale", "strings"),
    [
        (
            "es-ES",
            {
                "launcher": "Abrir chat",
                "placeholder": "Escribe tu mensaje…",
                "input": "Tu mensaje",
                "send": "Enviar",
                "handoff": "Hablar con una persona",
                "status": "En línea",
                "close": "Cerrar chat",
            },
        ),
        (
            "en-US",
            {
                "launcher": "Open chat",
                "placeholder": "Type your message…",
                "input": "Your message",
                "send": "Send",
                "handoff": "Talk to a person",
                "status": "Online",
                "close": "Close chat",
            },
        ),
    ],
    ids=["es", "en"],
)
def test_ui_language_follows_the_browser(
    stack: WidgetStack, new_context: Callable[..., Any], locale: str, strings: dict[str, str]
) -> None:
    from playwright.sync_api import expect

    language = locale[:2]
    page, widget = shop(new_context, stack, locale=locale)
    assert page.evaluate("navigator.language") == locale
    expect(page.locator("[data-chapi-widget]")).to_have_attribute("lang", language)
    expect(widget.hook("launcher")).to_have_attribute("aria-label", strings["launcher"])
    widget.open()
    expect(widget.hook("launcher")).to_have_attribute("aria-label", strings["close"])
    expect(widget.hook("input")).to_have_attribute("placeholder", strings["placeholder"])
    expect(widget.hook("input")).to_have_attribute("aria-label", strings["input"])
    expect(widget.hook("send")).to_have_attribute("aria-label", strings["send"])
    expect(widget.hook("handoff")).to_have_text(strings["handoff"])
    expect(widget.hook("status")).to_have_text(strings["status"])

    question = {"es": "¿Tienen seguro de viaje?", "en": "Do you have travel insurance?"}
    widget.send(question[language])
    widget.wait_replies(1)
    assert widget.conversation() == [
        ("visitor", question[language]),
        ("assistant", reply_for(question[language])),
    ]
    # The conversation knows the visitor's language.
    stored = stack.conversation(stack.a, widget.session_id(stack.a.key))
    assert stored is not None and stored.context["language"] == language


def test_strict_csp_host_page_works_without_violations(
    stack: WidgetStack, new_context: Callable[..., Any], console: Console
) -> None:
    from playwright.sync_api import expect

    context = new_context()
    # Every violation is reported to the page (also those of the shadow root, which bubble).
    context.add_init_script(
        """document.addEventListener('securitypolicyviolation', (e) => {
             (window.__violations = window.__violations || []).push(
               `${e.effectiveDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
           }, true);"""
    )
    page = context.new_page()
    with page.expect_response(lambda r: r.url.startswith(stack.pages.origin("shop-a"))) as main:
        page.goto(stack.pages.url("shop-a", "/csp", stack.a.key))
    policy = main.value.headers["content-security-policy"]
    assert "style-src 'none'" in policy and "unsafe" not in policy
    widget = Widget(page)
    expect(widget.hook("launcher")).to_be_visible()
    widget.open()
    question = "¿Funciona con CSP?"
    widget.send(question)
    widget.wait_replies(1)
    assert widget.conversation() == [("visitor", question), ("assistant", reply_for(question))]
    # The styles applied (constructed stylesheets pass style-src 'none'): the panel is laid out.
    position = widget.hook("panel").evaluate("(p) => getComputedStyle(p).position")
    assert position == "absolute"
    box = widget.hook("panel").bounding_box()
    assert box is not None and round(box["width"]) == 370
    assert page.evaluate("window.__violations || []") == []

    # The watch works: an inline style in a shadow root of this page is reported.
    console.allow(
        "error",
        re.escape(
            "Applying inline style violates the following Content Security Policy directive "
            "'style-src 'none''."
        )
        + " .*",
    )
    page.evaluate(
        """() => {
          const root = document.body.appendChild(document.createElement('div'))
            .attachShadow({mode: 'open'});
          root.append(Object.assign(document.createElement('style'), {textContent: 'p{}'}));
        }"""
    )
    violations = wait_until(lambda: page.evaluate("window.__violations || []"), timeout=5)
    assert [v.split()[0] for v in violations] == ["style-src-elem"]


def test_mobile_viewport_panel_covers_the_screen(
    stack: WidgetStack, new_context: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    page, widget = shop(
        new_context,
        stack,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    widget.hook("launcher").tap()
    panel = widget.hook("panel")
    expect(panel).to_be_visible()
    widget.wait_online()
    assert panel.bounding_box() == {"x": 0, "y": 0, "width": 390, "height": 844}
    expect(widget.hook("launcher")).to_be_hidden()  # the panel has a close button of its own
    question = "Hola desde el móvil"
    widget.hook("input").tap()
    widget.send(question)
    widget.wait_replies(1)
    assert widget.conversation() == [("visitor", question), ("assistant", reply_for(question))]
    page.get_by_role("button", name="Cerrar chat").tap()
    expect(panel).to_be_hidden()
    expect(widget.hook("launcher")).to_be_visible()


def test_visitors_of_another_company_never_see_its_messages(
    stack: WidgetStack, new_context: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    secret = "Mi póliza es la 998877, no se lo digas a nadie"
    page_a, widget_a = shop(new_context, stack, stack.a)
    widget_a.open()
    widget_a.send(secret)
    widget_a.wait_replies(1)
    session = widget_a.session_id(stack.a.key)

    # B's visitor, in another browser, even with the very same session id in B's storage.
    storage = {
        "origins": [
            {
                "origin": stack.b.origin,
                "localStorage": [{"name": f"chapi:{stack.b.key}:session", "value": session}],
            }
        ]
    }
    page_b, widget_b = shop(new_context, stack, stack.b, storage_state=storage)
    assert widget_b.session_id(stack.b.key) == session
    widget_b.open()
    expect(widget_b.hook("panel")).to_have_attribute("aria-label", f"Chat con {stack.b.bot_name}")
    assert widget_b.messages() == [
        {"role": "welcome", "state": "done", "id": None, "text": stack.b.welcome}
    ]
    question = "¿Qué bicicleta me recomiendas?"
    widget_b.send(question)
    widget_b.wait_replies(1)
    assert widget_b.conversation() == [("visitor", question), ("assistant", reply_for(question))]
    assert "998877" not in page_b.locator("[data-chapi-widget]").inner_text()
    # B's model call carried none of A's conversation.
    assert "998877" not in str(stack.chat_requests(stack.b))
    # And A's visitor saw nothing of B's.
    page_a.wait_for_timeout(300)
    assert widget_a.conversation() == [("visitor", secret), ("assistant", reply_for(secret))]

    stored_a = stack.conversation(stack.a, session)
    stored_b = stack.conversation(stack.b, session)
    assert stored_a is not None and stored_b is not None
    assert [m.text for m in stored_a.messages] == [secret, reply_for(secret)]
    assert [m.text for m in stored_b.messages] == [question, reply_for(question)]
