/* The sales inbox's live updates (templates/dashboard/inbox/*.html): one websocket to
 * /ws/dashboard/ (apps/leads/consumers.py). Inbox events carry ids only; the page re-fetches
 * the part that changed as server-rendered HTML (`?fragment=<part>`), so what a member may see
 * is decided by the same views as the full page. Also: streaming CSV exports with progress,
 * and the conversation page's reply box without a reload. No dependencies, no build step. */
(function () {
  "use strict";

  var root = document.querySelector("[data-inbox-page]");
  if (!root) {
    return;
  }
  var kind = root.getAttribute("data-inbox-page");
  var conversationId = Number(root.getAttribute("data-conversation-id")) || 0;
  var leadId = Number(root.getAttribute("data-lead-id")) || 0;
  var conversationIds = (root.getAttribute("data-conversation-ids") || "")
    .split(",").filter(Boolean).map(Number);
  var statusBadge = document.getElementById("live-status");
  var socket = null;
  var retryDelay = 1000;
  var pending = {};

  function setStatus(state) {
    if (!statusBadge) {
      return;
    }
    statusBadge.setAttribute("data-state", state);
    var text = statusBadge.getAttribute("data-text-" + state);
    if (text) {
      statusBadge.textContent = text;
    }
  }

  // --- Fragments -------------------------------------------------------------------------

  // A part of this page (with its query string), or of the page at `path`.
  function fragmentUrl(name, extra, path) {
    var params = new URLSearchParams(path ? "" : window.location.search);
    params.set("fragment", name);
    Object.keys(extra || {}).forEach(function (key) { params.set(key, extra[key]); });
    return (path || window.location.pathname) + "?" + params.toString();
  }

  function fetchFragment(name, extra, path) {
    return fetch(fragmentUrl(name, extra, path), {
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" }
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.text();
    }).then(function (html) {
      var template = document.createElement("template");
      template.innerHTML = html;  // server-rendered, escaped by Django's templates
      return template.content;
    });
  }

  function replaceById(id, name, path) {
    return fetchFragment(name, null, path).then(function (content) {
      var fresh = content.getElementById ? content.getElementById(id) : content.querySelector("#" + id);
      var current = document.getElementById(id);
      if (fresh && current) {
        current.replaceWith(fresh);
      }
    }).catch(function () { /* the next event or reload catches up */ });
  }

  // Several events in a burst cost one fetch per part.
  function soon(key, action) {
    if (pending[key]) {
      return;
    }
    pending[key] = window.setTimeout(function () {
      delete pending[key];
      action();
    }, 250);
  }

  // --- Conversation page ---------------------------------------------------------------------

  var list = document.getElementById("conversation-messages");
  var streaming = {};

  // Where to fetch from: after the last message shown, or just before the first one still being
  // written (shown while its reply was generating), so its final text replaces it.
  function lastMessageId() {
    var items = list ? list.querySelectorAll("[data-message-id]") : [];
    var last = 0;
    var unsettled = 0;
    for (var i = 0; i < items.length; i++) {
      var id = Number(items[i].getAttribute("data-message-id")) || 0;
      last = Math.max(last, id);
      if (items[i].getAttribute("data-status") === "generating" && (!unsettled || id < unsettled)) {
        unsettled = id;
      }
    }
    return unsettled ? unsettled - 1 : last;
  }

  function loadNewMessages() {
    if (!list) {
      return;
    }
    fetchFragment("messages", { after: String(lastMessageId()) }).then(function (content) {
      var items = content.querySelectorAll("[data-message-id]");
      for (var i = 0; i < items.length; i++) {
        var id = items[i].getAttribute("data-message-id");
        removeStreaming(id);
        var existing = list.querySelector('[data-message-id="' + id + '"]');
        if (existing) {
          existing.replaceWith(items[i]);
        } else {
          list.appendChild(items[i]);
        }
      }
      if (items.length) {
        list.lastElementChild.scrollIntoView({ block: "nearest" });
      }
    }).catch(function () {});
  }

  function removeStreaming(messageId) {
    var bubble = streaming[messageId];
    if (bubble) {
      bubble.element.remove();
      delete streaming[messageId];
    }
  }

  function onDelta(event) {
    if (!list) {
      return;
    }
    var bubble = streaming[event.message_id];
    if (!bubble) {
      var element = document.createElement("li");
      element.className = "msg chat-assistant streaming";
      element.setAttribute("data-testid", "streaming");
      element.setAttribute("data-streaming-id", String(event.message_id));
      var text = document.createElement("p");
      element.appendChild(text);
      list.appendChild(element);
      bubble = streaming[event.message_id] = { element: element, text: text, value: "" };
    }
    // Offsets count UTF-16 code units, as String.length does: a repeated part is dropped.
    if (event.offset <= bubble.value.length) {
      bubble.value = bubble.value.slice(0, event.offset) + event.text;
      bubble.text.textContent = bubble.value;
    }
  }

  function refreshStatus() {
    soon("status", function () { replaceById("conversation-status", "status"); });
  }

  // --- Events --------------------------------------------------------------------------

  function onEvent(event) {
    if (event.type === "inbox.event") {
      onInboxEvent(event);
      return;
    }
    if (kind !== "conversation" || event.conversation_id && event.conversation_id !== conversationId) {
      return;
    }
    if (event.type === "reply.delta") {
      onDelta(event);
    } else if (event.type === "reply.reset") {
      removeStreaming(String(event.message_id));
    } else if (event.type === "reply.completed" || event.type === "conversation.message") {
      soon("messages", loadNewMessages);
    } else if (event.type === "conversation.mode") {
      refreshStatus();
    }
  }

  // The top bar's unread count, on every inbox page (templates/dashboard/_notification_badge.html).
  function refreshBadge() {
    var badge = document.getElementById("notification-badge");
    if (badge) {
      replaceById("notification-badge", "badge", badge.getAttribute("href"));
    }
  }

  function onInboxEvent(event) {
    if (event.kind === "notification" || event.kind === "queue.changed") {
      soon("badge", refreshBadge);
      if (kind === "notifications") {
        soon("list", function () { replaceById("notification-list", "list"); });
      }
    }
    var mentionsConversation = event.conversation_id && (
      event.conversation_id === conversationId || conversationIds.indexOf(event.conversation_id) >= 0
    );
    if (kind === "leads" && event.kind === "lead.changed") {
      soon("rows", function () { replaceById("lead-results", "rows"); });
    } else if (kind === "inbox") {
      soon("queue", function () { replaceById("queue", "queue"); });
    } else if (kind === "lead" && (event.lead_id === leadId || mentionsConversation)) {
      soon("live", function () { replaceById("lead-live", "live"); });
    } else if (kind === "conversation") {
      // A visitor's message to a conversation a person has changes its lead, not the
      // conversation's group: catch up on both.
      if ((leadId && event.lead_id === leadId) || mentionsConversation) {
        soon("messages", loadNewMessages);
        refreshStatus();
      }
    }
  }

  function connect() {
    if (!("WebSocket" in window)) {
      return;
    }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/ws/dashboard/");
    socket.onopen = function () {
      retryDelay = 1000;
      setStatus("live");
      if (kind === "conversation" && conversationId) {
        socket.send(JSON.stringify({ type: "subscribe", conversation_id: conversationId }));
        // Whatever happened while the socket was closed.
        loadNewMessages();
        refreshStatus();
      }
    };
    socket.onmessage = function (message) {
      var event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      onEvent(event);
    };
    socket.onclose = function (close) {
      setStatus("offline");
      socket = null;
      if (close.code >= 4400 && close.code < 4500) {
        return;  // signed out, or not allowed: a reload shows why
      }
      window.setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    };
  }

  // --- Reply without a reload ---------------------------------------------------------------

  var replyForm = document.getElementById("reply-form");
  if (replyForm && window.fetch && window.FormData) {
    replyForm.addEventListener("submit", function (submit) {
      submit.preventDefault();
      var errorBox = document.getElementById("reply-error");
      var button = replyForm.querySelector("button[type=submit]");
      button.disabled = true;
      fetch(replyForm.action, {
        method: "POST",
        body: new FormData(replyForm),
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (result) {
        if (result.ok) {
          replyForm.reset();
          errorBox.hidden = true;
          loadNewMessages();
          refreshStatus();
        } else {
          errorBox.textContent = result.body.error || "";
          errorBox.hidden = false;
        }
      }).catch(function () {
        replyForm.submit();
      }).then(function () {
        button.disabled = false;
      });
    });
  }

  // --- Take, take over, hand back, close without a reload ------------------------------------
  // The status part is replaced on every change, so its forms are found by delegation.

  document.addEventListener("submit", function (submit) {
    var form = submit.target;
    if (!form.closest || !form.closest("#conversation-status") || !window.fetch || !window.FormData) {
      return;
    }
    submit.preventDefault();
    var errorBox = document.getElementById("status-error");
    var buttons = form.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = true;
    }
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      if (errorBox) {
        errorBox.textContent = result.ok ? "" : (result.body.error || "");
        errorBox.hidden = result.ok;
      }
      if (result.ok && !document.getElementById("reply-form")) {
        window.location.reload();  // the page may now offer a reply box
        return;
      }
      replaceById("conversation-status", "status");
      loadNewMessages();
    }).catch(function () {
      form.submit();
    });
  });

  // --- CSV exports with progress ---------------------------------------------------------------

  function countRecords(bytes, state) {
    // Newlines outside quoted cells end a CSV record (a cell may hold newlines).
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 34) {
        state.quoted = !state.quoted;
      } else if (bytes[i] === 10 && !state.quoted) {
        state.records += 1;
      }
    }
  }

  function filenameFrom(response, fallback) {
    var header = response.headers.get("Content-Disposition") || "";
    var match = /filename="([^"]+)"/.exec(header);
    return match ? match[1] : fallback;
  }

  function exportWithProgress(link) {
    var box = document.getElementById("export-progress");
    var bar = box && box.querySelector("progress");
    var label = box && box.querySelector(".export-text");
    var template = (box && box.getAttribute("data-text-progress")) || "%(done)s / %(total)s";
    function show(done, total) {
      if (!box) {
        return;
      }
      box.hidden = false;
      bar.max = Math.max(total, 1);
      bar.value = done;
      label.textContent = template.replace("%(done)s", done.toLocaleString())
        .replace("%(total)s", total.toLocaleString());
    }
    return fetch(link.href, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok || !response.body) {
        throw new Error("HTTP " + response.status);
      }
      var total = Number(response.headers.get("X-Total-Count")) || 0;
      var reader = response.body.getReader();
      var parts = [];
      var state = { quoted: false, records: 0 };
      show(0, total);
      function pump() {
        return reader.read().then(function (step) {
          if (step.done) {
            return;
          }
          parts.push(step.value);
          countRecords(step.value, state);
          show(Math.max(state.records - 1, 0), total);
          return pump();
        });
      }
      return pump().then(function () {
        var blob = new Blob(parts, { type: "text/csv;charset=utf-8" });
        var url = URL.createObjectURL(blob);
        var save = document.createElement("a");
        save.href = url;
        save.download = filenameFrom(response, "export.csv");
        document.body.appendChild(save);
        save.click();
        save.remove();
        window.setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
        if (box) {
          box.setAttribute("data-state", "done");
        }
      });
    });
  }

  var exporting = false;
  document.addEventListener("click", function (click) {
    var link = click.target.closest ? click.target.closest("a[data-export]") : null;
    if (!link || !window.fetch || !window.ReadableStream || click.ctrlKey || click.metaKey) {
      return;
    }
    click.preventDefault();
    if (exporting) {
      return;
    }
    exporting = true;
    exportWithProgress(link).catch(function () {
      window.location.href = link.href;  // the plain download still works
    }).then(function () {
      exporting = false;
    });
  });

  if (kind === "inbox") {
    window.setInterval(function () {
      soon("queue", function () { replaceById("queue", "queue"); });
    }, 60000);  // waiting times grow without events
  }

  connect();
}());
