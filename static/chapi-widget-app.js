/*
 * CHAPI web widget: the chat panel (docs/widget.md), loaded by chapi-widget.js when the browser
 * is idle or at the first click. It defines no global: it registers its factory on the loader's
 * `ChapiAssistant._app`, which the loader calls once per widget with what it drew.
 *
 * Everything is built with createElement and textContent; messages are formatted by building
 * elements, never by parsing markup, so no text from the server or the visitor becomes HTML.
 */
(() => {
  'use strict';

  const C = window.ChapiAssistant;
  const doc = document;
  if (typeof C !== 'function' || !C._chapi) return;

  const STRINGS = {
    es: {
      open: 'Abrir chat',
      unread: (n) => (n === 1 ? '1 mensaje nuevo' : `${n} mensajes nuevos`),
      assistant: 'Asistente',
      agent: 'Agente',
      dialog: 'Chat con {name}',
      close: 'Cerrar chat',
      messages: 'Mensajes',
      message: 'Tu mensaje',
      placeholder: 'Escribe tu mensaje…',
      send: 'Enviar',
      handoff: 'Hablar con una persona',
      connecting: 'Conectando…',
      offline: 'Sin conexión — reintentando…',
      online: 'En línea',
      typing: '{name} está escribiendo…',
      failed: 'No se envió',
      rate_limited: 'Estás enviando mensajes muy rápido. Intenta de nuevo en {seconds} s.',
      rate_limited_soon: 'Estás enviando mensajes muy rápido. Intenta de nuevo en un momento.',
      message_too_long: 'Tu mensaje es demasiado largo. Intenta acortarlo.',
      message_too_long_max: 'Tu mensaje es demasiado largo: máximo {max} caracteres.',
      invalid_message: 'No pudimos enviar ese mensaje.',
      unavailable: 'Enviado. El asistente responderá en breve.',
      not_here: 'Este chat no está disponible en este sitio web.',
      not_available: 'Este chat no está disponible.',
      generic: 'Algo salió mal. Intenta de nuevo.',
      prechat: 'Antes de empezar, cuéntanos un poco sobre ti.',
      name: 'Nombre',
      email: 'Correo electrónico',
      phone: 'Teléfono',
      optional: 'opcional',
      required: 'Este campo es obligatorio.',
      bad_email: 'Escribe un correo electrónico válido.',
      bad_field: 'Revisa este dato.',
      start: 'Comenzar',
    },
    en: {
      open: 'Open chat',
      unread: (n) => (n === 1 ? '1 new message' : `${n} new messages`),
      assistant: 'Assistant',
      agent: 'Agent',
      dialog: 'Chat with {name}',
      close: 'Close chat',
      messages: 'Messages',
      message: 'Your message',
      placeholder: 'Type your message…',
      send: 'Send',
      handoff: 'Talk to a person',
      connecting: 'Connecting…',
      offline: 'Offline — reconnecting…',
      online: 'Online',
      typing: '{name} is typing…',
      failed: 'Not sent',
      rate_limited: 'You are sending messages too fast. Try again in {seconds} s.',
      rate_limited_soon: 'You are sending messages too fast. Try again in a moment.',
      message_too_long: 'Your message is too long. Please shorten it.',
      message_too_long_max: 'Your message is too long: {max} characters at most.',
      invalid_message: 'We could not send that message.',
      unavailable: 'Sent. The assistant will answer shortly.',
      not_here: 'This chat is not available on this website.',
      not_available: 'This chat is not available.',
      generic: 'Something went wrong. Please try again.',
      prechat: 'Before we start, tell us a little about yourself.',
      name: 'Name',
      email: 'Email',
      phone: 'Phone',
      optional: 'optional',
      required: 'This field is required.',
      bad_email: 'Enter a valid email address.',
      bad_field: 'Please check this field.',
      start: 'Start chat',
    },
  };

  const ICONS = {
    close: 'M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z',
    send: 'M2.01 21 23 12 2.01 3 2 10l15 2-15 2z',
  };

  const DARK =
    '--c-bg:#1b1e26;--c-fg:#eceef3;--c-muted:#a3a9b7;--c-line:#303542;--c-bubble:#272b36;' +
    '--c-field:#14171e;--c-notice:#3a321c;--c-notice-fg:#f5e3a8;--c-error:#ff8f85;color-scheme:dark!important';

  const CSS = `
:host{--c-bg:#fff;--c-fg:#1f2330;--c-muted:#5f6675;--c-line:#e2e5ec;--c-bubble:#f0f1f5;--c-field:#fff;
  --c-notice:#fff5d6;--c-notice-fg:#5c4700;--c-error:#b42318;color-scheme:light!important}
:host([data-theme=dark]){${DARK}}
@media (prefers-color-scheme:dark){:host([data-theme=auto]){${DARK}}}
.panel{position:absolute;right:0;bottom:72px;display:flex;flex-direction:column;width:370px;height:600px;
  max-width:calc(100vw - 40px);max-height:calc(100vh - 112px);overflow:hidden;background:var(--c-bg);
  color:var(--c-fg);border:1px solid var(--c-line);border-radius:16px;box-shadow:0 12px 40px rgba(0,0,0,.2)}
:host([data-position=left]) .panel{right:auto;left:0}
:host([data-mode=inline]) .panel{position:relative;bottom:auto;width:100%;height:100%;max-width:none;
  max-height:none;border:0;border-radius:0;box-shadow:none}
.launcher{transition:transform .15s ease}
.launcher:hover{transform:scale(1.05)}
.launcher .i-close,:host([data-open]) .launcher .i-chat,:host([data-open]) .launcher-text{display:none}
:host([data-open]) .launcher .i-close{display:block}
.badge{position:absolute;top:-5px;right:-5px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;
  border:2px solid #fff;background:#e11d48;color:#fff;font:700 12px/18px system-ui,sans-serif;text-align:center}
@media (max-width:480px){
  :host(:not([data-mode=inline])) .panel{position:fixed;top:0;right:0;bottom:0;left:0;width:100%;height:100%;
    max-width:none;max-height:none;border:0;border-radius:0}
  :host([data-open]:not([data-mode=inline])) .launcher{display:none}
}
button{font:inherit;color:inherit;cursor:pointer}
button:disabled{cursor:default;opacity:.55}
:focus-visible{outline:2px solid var(--chapi-primary);outline-offset:2px}
.sr{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.header{display:flex;align-items:center;gap:10px;padding:12px 12px 12px 16px;flex:none;
  background:var(--chapi-primary);color:var(--chapi-on-primary)}
.header :focus-visible{outline-color:var(--chapi-on-primary)}
.avatar{width:36px;height:36px;border-radius:50%;object-fit:cover;flex:none;background:rgba(255,255,255,.2)}
.who{flex:1;min-width:0;display:flex;flex-direction:column}
.name{font-weight:700;font-size:16px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sub{font-size:12.5px;opacity:.85;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sub span+span:not(:empty)::before{content:" · "}
.icon-btn{display:flex;align-items:center;justify-content:center;width:36px;height:36px;padding:0;border:0;
  border-radius:50%;background:transparent;flex:none}
.icon-btn:hover{background:rgba(127,127,127,.2)}
.icon-btn svg{width:22px;height:22px;fill:currentColor}
.body{flex:1;min-height:0;overflow-y:auto;overscroll-behavior:contain;padding:14px;display:flex;
  flex-direction:column;gap:10px}
.notice{padding:10px 12px;border-radius:10px;background:var(--c-notice);color:var(--c-notice-fg);font-size:13.5px}
.log{display:flex;flex-direction:column;gap:8px}
.msg{display:flex;flex-direction:column;max-width:85%;align-self:flex-start}
.author{font-size:12px;color:var(--c-muted);margin:0 4px 2px}
.text{padding:8px 12px;border-radius:14px 14px 14px 4px;background:var(--c-bubble);line-height:1.45;
  overflow-wrap:anywhere}
.text p{margin:0}
.text p+*,.text ul+*,.text ol+*{margin-top:6px}
.text ul,.text ol{margin:0;padding-left:22px}
.text a{color:inherit;text-decoration:underline}
.visitor{align-self:flex-end}
.visitor .text{white-space:pre-wrap;border-radius:14px 14px 4px 14px;background:var(--chapi-primary);
  color:var(--chapi-on-primary)}
.visitor[data-state=sending] .text{opacity:.7}
.visitor[data-state=failed] .text{opacity:.7;outline:1px solid var(--c-error)}
.state{font-size:12px;color:var(--c-error);align-self:flex-end;margin:2px 4px 0}
.system{align-self:center;max-width:92%;text-align:center}
.system .text{background:transparent;color:var(--c-muted);font-size:13px;padding:2px 8px}
.typing{align-self:flex-start;display:flex;gap:4px;padding:12px 14px;border-radius:14px 14px 14px 4px;
  background:var(--c-bubble)}
.typing i{width:7px;height:7px;border-radius:50%;background:var(--c-muted);animation:chapi-dot 1.2s infinite}
.typing i:nth-child(3){animation-delay:.15s}
.typing i:nth-child(4){animation-delay:.3s}
@keyframes chapi-dot{0%,60%,100%{opacity:.3;transform:none}30%{opacity:1;transform:translateY(-3px)}}
.error{flex:none;margin:0 12px 8px;padding:8px 12px;border-radius:10px;font-size:13.5px;color:var(--c-error);
  border:1px solid var(--c-error)}
.error.info{color:var(--c-muted);border-color:var(--c-line)}
.actions{flex:none;display:flex;justify-content:center;padding:0 12px 6px}
.handoff{border:1px solid var(--c-line);border-radius:999px;background:transparent;padding:5px 12px;font-size:13px}
.handoff:hover:not(:disabled){border-color:var(--chapi-primary)}
.composer{flex:none;display:flex;align-items:flex-end;gap:8px;padding:10px 12px;border-top:1px solid var(--c-line)}
.input{flex:1;min-width:0;height:42px;max-height:140px;resize:none;margin:0;padding:10px 12px;border:1px solid var(--c-line);
  border-radius:12px;background:var(--c-field);color:var(--c-fg);font:inherit;font-size:16px;line-height:20px}
.input:focus{border-color:var(--chapi-primary)}
.input::placeholder{color:var(--c-muted)}
.send{display:flex;align-items:center;justify-content:center;width:42px;height:42px;flex:none;padding:0;border:0;
  border-radius:50%;background:var(--chapi-primary);color:var(--chapi-on-primary)}
.send svg{width:20px;height:20px;fill:currentColor}
.prechat{display:flex;flex-direction:column;gap:10px;padding:12px;border:1px solid var(--c-line);border-radius:12px}
.prechat p{margin:0}
.field{display:flex;flex-direction:column;gap:4px}
.field label{font-size:13.5px;font-weight:600}
.field .hint{font-weight:400;color:var(--c-muted)}
.field input{font:inherit;font-size:16px;padding:8px 10px;border:1px solid var(--c-line);border-radius:8px;
  background:var(--c-field);color:var(--c-fg)}
.field input[aria-invalid=true]{border-color:var(--c-error)}
.field-error{font-size:12.5px;color:var(--c-error)}
.primary{border:0;border-radius:10px;padding:9px 14px;font-weight:600;background:var(--chapi-primary);
  color:var(--chapi-on-primary)}
@media (prefers-reduced-motion:reduce){.typing i{animation:none}.launcher{transition:none}}
`;

  // localStorage throws in sandboxed frames and some private modes: memory is the fallback.
  const memory = new Map();
  const store = {
    get(key) {
      try {
        const value = window.localStorage.getItem(key);
        if (value !== null) return value;
      } catch (e) {
        // memory only
      }
      return memory.has(key) ? memory.get(key) : null;
    },
    set(key, value) {
      memory.set(key, String(value));
      try {
        window.localStorage.setItem(key, String(value));
      } catch (e) {
        // memory only
      }
    },
  };

  const uuid = () => {
    try {
      if (typeof crypto.randomUUID === 'function') return crypto.randomUUID(); // secure contexts
    } catch (e) {
      // fall back below
    }
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; // version 4
    b[8] = (b[8] & 63) | 128; // RFC 4122 variant
    const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };

  const httpUrl = (value) => {
    try {
      const url = new URL(value, location.href);
      return value && /^https?:$/.test(url.protocol) ? url.href : '';
    } catch (e) {
      return '';
    }
  };
  const object = (value) => (value && typeof value === 'object' && !Array.isArray(value) ? value : {});

  const ROLES = ['visitor', 'assistant', 'agent', 'system'];
  const LINK = /^(?:https?|mailto|tel):$/;
  const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (all, k) => (k in values ? values[k] : all));

  C._app = (w) => {
    const { s, el, safe, launcher } = w;
    const icon = (name, cls) => w.icon(ICONS[name], cls);
    const T = STRINGS[s.language] || STRINGS.es;
    const inline = s.mode === 'inline';
    const botName = s.botName || T.assistant;
    const avatarUrl = httpUrl(s.avatarUrl);
    const prechat = object(s.config.prechat);
    const hours = object(s.config.hours);
    const K = `chapi:${s.key}:`;
    w.adopt(CSS);

    // ---- the launcher: close icon, unread badge, label ----

    const badge = el('span', { class: 'badge', 'data-chapi': 'badge', 'aria-hidden': 'true', hidden: true });
    let unreadCount = 0;
    let isOpen = false;
    const label = () => {
      if (!launcher) return;
      const text = isOpen ? T.close : unreadCount ? `${T.open} (${T.unread(unreadCount)})` : T.open;
      launcher.setAttribute('aria-label', text);
      launcher.setAttribute('aria-expanded', String(isOpen));
    };
    const setUnread = (count) => {
      unreadCount = count;
      badge.textContent = count > 9 ? '9+' : String(count);
      badge.hidden = !count;
      label();
    };
    if (launcher) {
      launcher.append(icon('close', 'i-close'), badge);
      launcher.setAttribute('aria-controls', 'chapi-panel');
    }

    // ---- formatting: **bold**, lists, links, line breaks; everything else stays text ----

    const link = (href, caption) => {
      try {
        const url = new URL(href);
        if (LINK.test(url.protocol)) {
          return el('a', { href: url.href, target: '_blank', rel: 'noopener noreferrer nofollow', text: caption });
        }
      } catch (e) {
        // not an absolute URL: plain text
      }
      return null;
    };

    const inlineNodes = (text, inBold) => {
      const re = /\*\*(?=\S)([^\n]*?\S)\*\*|\[([^\]\n]+)\]\(\s*([^()\s]+)\s*\)|\bhttps?:\/\/[^\s<>"']+/g;
      const out = [];
      let at = 0;
      let m;
      while ((m = re.exec(text))) {
        let node = null;
        let raw = m[0];
        if (m[1] !== undefined) {
          node = inBold ? null : el('strong', null, ...inlineNodes(m[1], true));
        } else if (m[2] !== undefined) {
          node = link(m[3], m[2]);
        } else {
          raw = raw.replace(/[.,;:!?)\]}*]+$/, ''); // sentence punctuation after a bare URL
          re.lastIndex = m.index + raw.length;
          node = link(raw, raw);
        }
        if (!node) continue; // stays text
        if (m.index > at) out.push(text.slice(at, m.index));
        out.push(node);
        at = m.index + raw.length;
      }
      if (at < text.length) out.push(text.slice(at));
      return out;
    };

    const format = (text) => {
      const out = [];
      let list = null;
      let listType = '';
      let para = null;
      for (const line of text.split(/\r?\n/)) {
        const item = /^\s*(?:([-*•])|(\d{1,4})[.)])\s+(.*)$/.exec(line);
        if (item) {
          const type = item[1] ? 'ul' : 'ol';
          if (!list || listType !== type) {
            list = el(type);
            listType = type;
            if (item[2] && item[2] !== '1') list.start = Number(item[2]);
            out.push(list);
          }
          list.append(el('li', null, ...inlineNodes(item[3])));
          para = null;
        } else if (!line.trim()) {
          list = para = null;
        } else {
          list = null;
          if (para) para.append(el('br'));
          else out.push((para = el('p')));
          para.append(...inlineNodes(line));
        }
      }
      return out;
    };

    // ---- the panel ----

    const status = el('span', { class: 'status', role: 'status', 'data-chapi': 'status' });
    const header = el(
      'div',
      { class: 'header' },
      avatarUrl ? el('img', { class: 'avatar', src: avatarUrl, alt: '' }) : null,
      el(
        'div',
        { class: 'who' },
        el('span', { class: 'name', text: botName }),
        el('span', { class: 'sub' }, s.companyName ? el('span', { text: s.companyName }) : null, status),
      ),
      inline ? null : el('button', { type: 'button', class: 'icon-btn', 'aria-label': T.close, onclick: () => close(true) }, icon('close')),
    );
    const notice =
      hours.enabled && hours.open === false && hours.offlineMessage
        ? el('div', { class: 'notice', 'data-chapi': 'notice', text: String(hours.offlineMessage) })
        : null;
    const log = el('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': T.messages, 'data-chapi': 'messages' });
    const typingLabel = fill(T.typing, { name: botName });
    const typing = el(
      'div',
      { class: 'typing', role: 'status', 'aria-label': typingLabel, 'data-chapi': 'typing', hidden: true },
      el('span', { class: 'sr', text: typingLabel }),
      el('i', { 'aria-hidden': 'true' }),
      el('i', { 'aria-hidden': 'true' }),
      el('i', { 'aria-hidden': 'true' }),
    );
    const body = el('div', { class: 'body' }, notice, log, typing);
    const error = el('div', { class: 'error', role: 'alert', 'data-chapi': 'error', hidden: true });
    const handoff = el('button', { type: 'button', class: 'handoff', 'data-chapi': 'handoff', text: T.handoff, onclick: () => askForPerson() });
    const actions = el('div', { class: 'actions' }, handoff);
    const input = el('textarea', {
      class: 'input',
      'data-chapi': 'input',
      rows: 1,
      placeholder: T.placeholder,
      'aria-label': T.message,
      onkeydown: (e) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
          e.preventDefault();
          submit();
        }
      },
      oninput: () => grow(),
    });
    const sendButton = el('button', { type: 'submit', class: 'send', 'data-chapi': 'send', 'aria-label': T.send }, icon('send'));
    const composer = el(
      'form',
      {
        class: 'composer',
        onsubmit: (e) => {
          e.preventDefault();
          submit();
        },
      },
      input,
      sendButton,
    );
    const panel = el(
      'div',
      { class: 'panel', id: 'chapi-panel', role: 'dialog', 'aria-label': fill(T.dialog, { name: botName }), 'data-chapi': 'panel', hidden: true },
      header,
      body,
      error,
      actions,
      composer,
    );
    w.root.insertBefore(panel, launcher); // before the launcher, or alone when inline

    const grow = () => {
      input.style.height = 'auto';
      input.style.height = `${Math.min(input.scrollHeight + 2, 140)}px`;
    };

    const nearBottom = () => body.scrollHeight - body.scrollTop - body.clientHeight < 80;
    // Runs a change to the conversation, keeping it scrolled to the end if it was there.
    const change = (fn, force) => {
      const stick = force || nearBottom();
      fn();
      if (stick) body.scrollTop = body.scrollHeight;
    };

    let errorTimer = 0;
    const showError = (text, info, sticky) => {
      clearTimeout(errorTimer);
      error.textContent = text;
      error.classList.toggle('info', !!info);
      error.hidden = false;
      if (!sticky) errorTimer = setTimeout(() => (error.hidden = true), info ? 8000 : 15000);
    };
    const clearError = () => {
      if (!dead) error.hidden = true;
    };

    // ---- messages ----

    const byId = new Map(); // server id -> entry
    const pending = new Map(); // client_id -> entry of a visitor message not yet confirmed
    let lastId = 0;

    const entry = (role, state) => {
      const text = el('div', { class: 'text' });
      const node = el('div', { class: `msg ${role}`, 'data-chapi': 'message', 'data-role': role, 'data-state': state }, text);
      return { node, body: text, role, text: '', final: false, broken: false };
    };
    const setState = (e, state) => e.node.setAttribute('data-state', state);
    const setText = (e, text) => {
      e.text = text;
      if (e.role === 'visitor') e.body.textContent = text;
      else e.body.replaceChildren(...format(text));
    };
    // Keeps the conversation in id order; unconfirmed visitor messages stay at the end.
    const place = (node, id) => {
      for (const child of log.children) {
        const other = Number(child.getAttribute('data-id'));
        if (child.getAttribute('data-state') === 'sending' || other > id) {
          log.insertBefore(node, child);
          return;
        }
      }
      log.append(node);
    };

    let welcome = null;
    if (s.welcomeMessage) {
      welcome = entry('welcome', 'done');
      setText(welcome, s.welcomeMessage);
      log.append(welcome.node);
    }

    // ---- unread badge ----

    const unread = new Set();
    const seen = () => Number(store.get(`${K}seen`)) || 0;
    const markSeen = () => {
      if (lastId > seen()) store.set(`${K}seen`, lastId);
      unread.clear();
      setUnread(0);
    };

    // ---- typing indicator ----

    let mode = 'bot';
    let typingTimer = 0;
    const hideTyping = () => {
      clearTimeout(typingTimer);
      typing.hidden = true;
    };
    const showTyping = () => {
      if (mode !== 'bot' && mode !== 'pending_human') return;
      change(() => (typing.hidden = false));
      clearTimeout(typingTimer);
      typingTimer = setTimeout(hideTyping, 90000); // a reply that never comes
    };

    const onMessage = (m, live) => {
      if (!m || typeof m.id !== 'number') return;
      const role = ROLES.includes(m.role) ? m.role : 'system';
      let e = byId.get(m.id);
      if (!e && m.client_id && pending.has(m.client_id)) {
        e = pending.get(m.client_id);
        pending.delete(m.client_id);
        byId.set(m.id, e);
      }
      const fresh = !e || !e.final;
      change(() => {
        if (!e) {
          e = entry(role, 'done');
          byId.set(m.id, e);
          place(e.node, m.id);
        }
        e.node.setAttribute('data-id', String(m.id));
        if (role === 'agent' && !e.author) {
          e.author = el('span', { class: 'author', text: m.author || T.agent });
          e.node.prepend(e.author);
        }
        if (m.created_at) {
          const when = new Date(m.created_at);
          if (!Number.isNaN(when.getTime())) e.node.title = when.toLocaleString(s.language);
        }
        setText(e, String(m.text || ''));
        e.final = true;
        setState(e, role === 'visitor' ? 'sent' : 'done');
      });
      lastId = Math.max(lastId, m.id);
      if (role === 'visitor') {
        if (live) showTyping();
      } else {
        if (live) hideTyping();
        if (fresh && !isOpen && m.id > seen()) {
          unread.add(m.id);
          setUnread(unread.size);
        }
      }
      if (isOpen) markSeen();
    };

    const onDelta = (f) => {
      const id = f.message_id;
      if (typeof id !== 'number' || typeof f.text !== 'string') return;
      let e = byId.get(id);
      if (e && (e.final || e.broken)) return;
      // `offset` counts UTF-16 code units, as JavaScript's String length does.
      if (f.offset !== (e ? e.text.length : 0)) {
        if (e) e.broken = true; // wait for the final message
        return;
      }
      hideTyping();
      change(() => {
        if (!e) {
          e = entry('assistant', 'streaming');
          e.node.setAttribute('data-id', String(id));
          byId.set(id, e);
          place(e.node, id);
        }
        setText(e, e.text + f.text);
      });
    };

    const onReset = (f) => {
      const e = byId.get(f.message_id);
      if (e && !e.final) {
        e.node.remove();
        byId.delete(f.message_id);
      }
      showTyping();
    };

    // ---- connection ----

    let ws = null;
    let connected = false;
    let dead = false; // refused for good (44xx): never reconnect
    let started = false;
    let attempt = 0;
    let retryTimer = 0;
    let pingTimer = 0;
    let lastFrame = 0;
    let prechatFrame = null;
    let retryAfter = 0; // seconds, from the last rate_limited error

    const setStatus = (text) => {
      if (status.textContent !== text) status.textContent = text;
    };
    const sync = () => {
      handoff.disabled = !connected;
      actions.hidden = mode !== 'bot' || !!prechatForm || dead;
      sendButton.disabled = dead;
      input.disabled = dead;
    };

    const send = (frame) => {
      if (!ws || ws.readyState !== 1) return false;
      ws.send(JSON.stringify(frame));
      return true;
    };

    const sessionId = () => {
      let id = store.get(`${K}session`);
      if (!id) {
        id = uuid();
        store.set(`${K}session`, id);
      }
      return id;
    };

    const context = () => {
      // The page's own keys first: the server keeps a bounded number of keys, in order.
      const context = { page: location.href, title: doc.title, referrer: doc.referrer, language: s.language };
      try {
        const extra = JSON.parse(JSON.stringify(object(s.options.context)));
        for (const key of Object.keys(extra)) if (!(key in context)) context[key] = extra[key];
      } catch (e) {
        // not serialisable: left out
      }
      return context;
    };

    // `after`: the last message this tab shows, but never past a reply still being written,
    // whose final text must come back.
    const after = () => {
      let id = lastId;
      for (const [key, e] of byId) if (!e.final && key - 1 < id) id = key - 1;
      return Math.max(id, 0);
    };

    const stopTimers = () => {
      clearInterval(pingTimer);
      clearTimeout(retryTimer);
      retryTimer = 0;
    };

    const lost = (code) => {
      ws = null;
      connected = false;
      stopTimers();
      hideTyping();
      if (code === 4429) {
        // too many connections from this address: wait as long as the server said
        setStatus(T.offline);
        retryTimer = setTimeout(safe(connect), Math.max(retryAfter, 1) * 1000 * (1 + Math.random() * 0.3));
      } else if (code >= 4400 && code <= 4499) {
        dead = true;
        setStatus('');
        showError(code === 4403 ? T.not_here : T.not_available, false, true);
      } else {
        setStatus(T.offline);
        const delay = Math.min(30000, 500 * 2 ** attempt) * (0.7 + Math.random() * 0.6);
        attempt += 1;
        retryTimer = setTimeout(safe(connect), delay);
      }
      sync();
    };

    // A socket that went quiet (no pong) is dropped and replaced.
    const drop = () => {
      const sock = ws;
      if (!sock) return;
      sock.onclose = sock.onmessage = sock.onopen = null;
      try {
        sock.close();
      } catch (e) {
        // already closing
      }
      lost(1006);
    };

    function connect() {
      if (ws || dead) return;
      started = true;
      stopTimers();
      if (!attempt) setStatus(T.connecting);
      let sock;
      try {
        sock = new WebSocket(s.socketUrl);
      } catch (e) {
        lost(4400); // an unusable URL will not get better
        return;
      }
      ws = sock;
      sock.onopen = safe(() => {
        lastFrame = Date.now();
        send({ type: 'hello', session_id: sessionId(), after: after(), context: context() });
      });
      sock.onmessage = safe((event) => {
        lastFrame = Date.now();
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (e) {
          return;
        }
        if (frame && typeof frame === 'object') handle(frame);
      });
      sock.onclose = safe((event) => {
        if (ws === sock) lost(event.code);
      });
      sock.onerror = () => {}; // a close event follows
    }

    const onReady = (f) => {
      connected = true;
      attempt = 0;
      setStatus(T.online);
      clearInterval(pingTimer);
      pingTimer = setInterval(
        safe(() => {
          if (Date.now() - lastFrame > 60000) drop();
          else send({ type: 'ping' });
        }),
        25000,
      );
      mode = typeof f.mode === 'string' ? f.mode : 'bot';
      const listed = new Set();
      for (const m of Array.isArray(f.messages) ? f.messages : []) {
        onMessage(m, false);
        if (m) listed.add(m.id);
      }
      if (!f.generating) {
        for (const [id, e] of byId) {
          if (!e.final && !listed.has(id)) {
            e.node.remove();
            byId.delete(id);
          }
        }
      }
      if (f.generating) showTyping();
      else hideTyping();
      if (prechatFrame) send(prechatFrame);
      for (const [clientId, e] of pending) send({ type: 'message', client_id: clientId, text: e.text });
      sync();
    };

    const onError = (f) => {
      const code = String(f.code || '');
      if (prechatForm && prechatFrame && !f.client_id) {
        prechatFailed(f.field, typeof f.message === 'string' ? f.message : '');
        if (f.field) return;
      }
      const e = f.client_id && pending.get(f.client_id);
      if (code === 'unavailable') {
        hideTyping();
        showError(T.unavailable, true);
        return;
      }
      if (e) {
        // not stored: give the text back to the visitor, or mark it
        pending.delete(f.client_id);
        hideTyping();
        if (!input.value) {
          e.node.remove();
          input.value = e.text;
          grow();
        } else {
          setState(e, 'failed');
          e.node.append(el('span', { class: 'state', text: T.failed }));
        }
      }
      if (code === 'rate_limited') {
        const seconds = Math.ceil(Number(f.retry_after));
        retryAfter = seconds > 0 ? Math.min(seconds, 300) : 30;
        if (!connected) return; // too many connections: the status line says we retry
        showError(seconds > 0 ? fill(T.rate_limited, { seconds }) : T.rate_limited_soon);
      } else if (code === 'message_too_long' && f.max_chars > 0) {
        showError(fill(T.message_too_long_max, { max: f.max_chars }));
      } else if (code === 'message_too_long' || code === 'invalid_message') {
        showError(T[code]);
      } else if (code === 'origin_not_allowed') {
        showError(T.not_here, false, true);
      } else if (/widget_key|suspended|protocol/.test(code)) {
        showError(T.not_available, false, true);
      } else {
        showError(typeof f.message === 'string' && f.message ? f.message : T.generic);
      }
    };

    const handle = (f) => {
      switch (f.type) {
        case 'ready':
          // An A/B test may give this visitor another welcome.
          if (welcome && typeof f.welcome === 'string' && f.welcome) setText(welcome, f.welcome);
          onReady(f);
          break;
        case 'message':
          onMessage(f.message, true);
          break;
        case 'delta':
          onDelta(f);
          break;
        case 'reset':
          onReset(f);
          break;
        case 'mode':
          mode = String(f.mode || 'bot');
          if (mode === 'human') hideTyping();
          sync();
          break;
        case 'prechat.ok':
          prechatDone();
          break;
        case 'error':
          onError(f);
          break;
        default: // pong, and frames of a newer server
      }
    };

    // ---- sending ----

    const tooBig = (frame) => new TextEncoder().encode(JSON.stringify(frame)).length > 32000;

    const submit = () => {
      if (dead || prechatForm) return;
      const text = input.value.trim();
      if (!text) return;
      const clientId = uuid();
      if (tooBig({ type: 'message', client_id: clientId, text })) {
        showError(T.message_too_long);
        return;
      }
      input.value = '';
      grow();
      clearError();
      const e = entry('visitor', 'sending');
      setText(e, text);
      change(() => log.append(e.node), true);
      pending.set(clientId, e);
      if (connected) send({ type: 'message', client_id: clientId, text });
      else connect(); // sent after `ready`
    };

    const askForPerson = () => {
      if (send({ type: 'handoff' })) handoff.disabled = true; // the server answers with `mode`
    };

    // ---- pre-chat form ----

    const asked = ['name', 'email', 'phone'].filter((f) => ['optional', 'required'].includes(prechat[f]));
    let prechatForm = null;
    const fields = {};

    const prechatFailed = (name, message) => {
      const field = fields[name];
      prechatForm.querySelector('button').disabled = false;
      prechatFrame = null;
      if (!field) return; // the error is shown above the composer
      field.error.textContent = message || (name === 'email' ? T.bad_email : T.bad_field);
      field.input.setAttribute('aria-invalid', 'true');
      field.input.focus();
    };

    const prechatDone = () => {
      if (!prechatForm) return;
      store.set(`${K}prechat`, '1');
      prechatForm.remove();
      prechatForm = null;
      prechatFrame = null;
      composer.hidden = false;
      sync();
      input.focus();
    };

    const submitPrechat = () => {
      const frame = { type: 'prechat', name: '', email: '', phone: '' };
      let firstBad = null;
      for (const name of asked) {
        const { input: field, error: message } = fields[name];
        const value = field.value.trim();
        let problem = '';
        if (!value && prechat[name] === 'required') problem = T.required;
        else if (value && name === 'email' && !EMAIL.test(value)) problem = T.bad_email;
        message.textContent = problem;
        if (problem) field.setAttribute('aria-invalid', 'true');
        else field.removeAttribute('aria-invalid');
        if (problem && !firstBad) firstBad = field;
        frame[name] = value;
      }
      if (firstBad) {
        firstBad.focus();
        return;
      }
      prechatForm.querySelector('button').disabled = true;
      prechatFrame = frame;
      if (connected) send(frame);
      else connect(); // sent after `ready`
    };

    if (asked.length && !store.get(`${K}prechat`)) {
      prechatForm = el(
        'form',
        {
          class: 'prechat',
          'data-chapi': 'prechat',
          novalidate: true,
          onsubmit: (e) => {
            e.preventDefault();
            submitPrechat();
          },
        },
        el('p', { text: T.prechat }),
        ...asked.map((name) => {
          const required = prechat[name] === 'required';
          const id = `chapi-${name}`;
          const message = el('div', { class: 'field-error', id: `${id}-error` });
          const field = el('input', {
            id,
            name,
            type: name === 'email' ? 'email' : name === 'phone' ? 'tel' : 'text',
            autocomplete: name === 'phone' ? 'tel' : name,
            required,
            'aria-describedby': `${id}-error`,
            oninput: () => {
              message.textContent = '';
              field.removeAttribute('aria-invalid');
            },
          });
          fields[name] = { input: field, error: message };
          return el(
            'div',
            { class: 'field' },
            el(
              'label',
              { for: id },
              T[name],
              required ? el('span', { 'aria-hidden': 'true', text: ' *' }) : el('span', { class: 'hint', text: ` (${T.optional})` }),
            ),
            field,
            message,
          );
        }),
        el('button', { type: 'submit', class: 'primary', text: T.start }),
      );
      body.append(prechatForm);
      composer.hidden = true;
    }
    sync();

    // ---- open and close ----

    const setOpen = (open) => {
      isOpen = open;
      panel.hidden = !open;
      if (open) w.host.setAttribute('data-open', '');
      else w.host.removeAttribute('data-open');
      label();
    };
    // `focus`: opened by the visitor (launcher, the page's own button); not when the page opens
    // the chat by itself, which must not move the page's focus nor scroll it.
    const open = (focus) => {
      if (isOpen) return;
      setOpen(true);
      connect();
      markSeen();
      body.scrollTop = body.scrollHeight;
      const target = prechatForm ? fields[asked[0]].input : input;
      if (focus && !target.disabled) target.focus();
    };
    const close = (refocus) => {
      if (inline || !isOpen) return;
      const inside = panel.contains(w.root.activeElement);
      setOpen(false);
      if ((refocus || inside) && launcher) launcher.focus();
    };

    w.root.addEventListener(
      'keydown',
      safe((e) => {
        if (e.key === 'Escape' && isOpen && !inline) {
          e.stopPropagation();
          close(true);
        }
      }),
    );
    window.addEventListener(
      'online',
      safe(() => {
        if (started && !ws && !dead) {
          attempt = 0;
          connect();
        }
      }),
    );

    // A returning visitor connects at once, so replies that arrive later raise the badge.
    if (store.get(`${K}session`)) connect();

    return {
      open: safe((focus) => open(focus === true)),
      close: safe(() => close(false)),
      toggle: safe(() => (isOpen ? close(true) : open(true))),
    };
  };
})();
