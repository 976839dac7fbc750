/*
 * CHAPI web widget: the loader (docs/widget.md).
 *
 * Defines the one global `ChapiAssistant`, picks up the calls queued by the snippet's stub
 * (`ChapiAssistant.q`), fetches the key's settings, draws the launcher in a shadow root and loads
 * the chat itself (chapi-widget-app.js, from this file's folder) when the browser is idle or at
 * the first click. Hand-written ES2018, no build step, no dependencies.
 *
 * Nothing here may break the host page: every entry point catches its own errors, every promise
 * has a handler, and a widget that cannot start shows nothing.
 */
(() => {
  'use strict';

  const win = window;
  const doc = document;
  const previous = win.ChapiAssistant;
  if (typeof previous === 'function' && previous._chapi) return; // loaded twice: keep the first

  // async classic scripts have currentScript while they run for the first time.
  const me = doc.currentScript || doc.querySelector('script[src*="chapi-widget.js"]');
  let scriptUrl = null;
  try {
    scriptUrl = new URL(me.src, location.href);
  } catch (e) {
    // no usable src: the widget cannot find its server and stays silent
  }
  const nonce = (me && me.nonce) || '';
  // The server is where the loader comes from: the part of its path before /static/.
  let SCRIPT_BASE = '';
  if (scriptUrl) {
    const at = scriptUrl.pathname.lastIndexOf('/static/');
    SCRIPT_BASE = scriptUrl.origin + (at > 0 ? scriptUrl.pathname.slice(0, at) : '');
  }
  const APP_URL = scriptUrl ? new URL('chapi-widget-app.js' + scriptUrl.search, scriptUrl).href : '';

  const STRINGS = {
    es: { open: 'Abrir chat', close: 'Cerrar chat', unread: (n) => (n === 1 ? '1 mensaje nuevo' : `${n} mensajes nuevos`) },
    en: { open: 'Open chat', close: 'Close chat', unread: (n) => (n === 1 ? '1 new message' : `${n} new messages`) },
  };

  const ICONS = {
    chat: 'M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2zM7 9h10v2H7zm0-3h10v2H7zm0 6h7v2H7z',
    close: 'M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z',
    send: 'M2.01 21 23 12 2.01 3 2 10l15 2-15 2z',
  };

  const CSS = `
:host{all:initial!important;display:block!important;position:fixed!important;z-index:2147483000!important;
  right:20px!important;bottom:20px!important;left:auto!important;top:auto!important;width:auto!important;
  height:auto!important;margin:0!important;padding:0!important;visibility:visible!important;
  font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif!important;
  color:#1f2330!important;text-align:left!important;-webkit-text-size-adjust:100%!important}
:host([data-position=left]){left:20px!important;right:auto!important}
:host([data-mode=inline]){position:relative!important;inset:auto!important;z-index:auto!important;
  width:100%!important;height:100%!important}
*,*::before,*::after{box-sizing:border-box}
[hidden]{display:none!important}
.launcher{all:unset;box-sizing:border-box;position:relative;display:flex;align-items:center;justify-content:center;
  gap:8px;height:56px;min-width:56px;padding:0 15px;border-radius:28px;cursor:pointer;
  background:var(--chapi-primary);color:var(--chapi-on-primary);font-weight:600;font-size:15px;
  box-shadow:0 6px 20px rgba(0,0,0,.22);transition:transform .15s ease}
.launcher:hover{transform:scale(1.05)}
.launcher:focus-visible{outline:3px solid var(--chapi-primary);outline-offset:3px}
.launcher svg{width:26px;height:26px;fill:currentColor;flex:none}
.launcher .i-close,:host([data-open]) .launcher .i-chat,:host([data-open]) .launcher-text{display:none}
:host([data-open]) .launcher .i-close{display:block}
.badge{position:absolute;top:-5px;right:-5px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;
  border:2px solid #fff;background:#e11d48;color:#fff;font:700 12px/18px system-ui,sans-serif;text-align:center}
@media (prefers-reduced-motion:reduce){*{transition:none!important;animation:none!important}}
`;

  let debug = false;
  const report = (error) => {
    if (debug) console.warn('ChapiAssistant:', error);
  };
  // Wraps a handler so that an error inside it never reaches the host page.
  const safe = (fn) =>
    function (...args) {
      try {
        return fn.apply(this, args);
      } catch (e) {
        report(e);
        return undefined;
      }
    };
  const noop = () => {};

  const el = (tag, attrs, ...children) => {
    const node = doc.createElement(tag);
    for (const name of Object.keys(attrs || {})) {
      const value = attrs[name];
      if (value == null || value === false) continue;
      if (name === 'text') node.textContent = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), safe(value));
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) if (child != null && child !== false) node.append(child);
    return node;
  };

  const SVG = 'http://www.w3.org/2000/svg';
  const icon = (name, cls) => {
    const svg = doc.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    if (cls) svg.setAttribute('class', cls);
    const path = doc.createElementNS(SVG, 'path');
    path.setAttribute('d', ICONS[name]);
    svg.append(path);
    return svg;
  };

  // Constructed stylesheets work under a strict style-src; a <style> element is the fallback
  // for browsers without them.
  const adopt = (root, css) => {
    try {
      if ('adoptedStyleSheets' in root && 'replaceSync' in CSSStyleSheet.prototype) {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(css);
        root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
        return;
      }
    } catch (e) {
      report(e);
    }
    root.append(el('style', { text: css }));
  };

  // localStorage throws in sandboxed frames and some private modes: memory is the fallback.
  const memory = new Map();
  const store = {
    get(key) {
      try {
        const value = win.localStorage.getItem(key);
        if (value !== null) return value;
      } catch (e) {
        // fall through to memory
      }
      return memory.has(key) ? memory.get(key) : null;
    },
    set(key, value) {
      memory.set(key, String(value));
      try {
        win.localStorage.setItem(key, String(value));
      } catch (e) {
        // memory only
      }
    },
  };

  const uuid = () => {
    try {
      if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    } catch (e) {
      // not a secure context
    }
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };

  const given = (value) => value !== undefined && value !== null;
  const pick = (option, setting) => (given(option) ? option : setting);

  const color = (value) =>
    typeof value === 'string' && /^#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(value)
      ? value
      : '#4f46e5';

  // White or near-black text on the brand colour, whichever contrasts more (WCAG luminance).
  const onColor = (hex) => {
    let h = hex.slice(1);
    if (h.length < 6) h = h.replace(/./g, '$&$&');
    const lum = [0, 2, 4]
      .map((i) => parseInt(h.slice(i, i + 2), 16) / 255)
      .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
    const l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 ? '#ffffff' : '#111827';
  };

  const httpUrl = (value) => {
    try {
      const url = new URL(String(value), location.href);
      return value && /^https?:$/.test(url.protocol) ? url.href : '';
    } catch (e) {
      return '';
    }
  };

  const language = (option, config) => {
    const valid = (l) => (l === 'es' || l === 'en' ? l : null);
    const offered = Array.isArray(config.languages) && config.languages.length ? config.languages : ['es', 'en'];
    const nav = String(navigator.language || '').toLowerCase();
    const browser = nav.startsWith('en') ? 'en' : nav.startsWith('es') ? 'es' : null;
    return valid(option) || (offered.includes(browser) && browser) || valid(config.language) || 'es';
  };

  const containerFor = (option) => {
    let node = null;
    try {
      node = typeof option === 'string' ? doc.querySelector(option) : option;
    } catch (e) {
      // an invalid selector
    }
    if (!node || node.nodeType !== 1) node = doc.getElementById('chapi-assistant');
    return node || doc.body;
  };

  // The key's settings, or null (one console warning for a refused key; silence otherwise).
  const fetchConfig = async (base, key) => {
    try {
      const res = await fetch(`${base}/widget/config?key=${encodeURIComponent(key)}`, {
        credentials: 'omit',
        mode: 'cors',
      });
      const body = await res.json().catch(() => null);
      if (res.ok && body && typeof body === 'object' && !body.error) return body;
      if (res.status === 403 || res.status === 404) {
        const error = (body && body.error) || {};
        console.warn(`ChapiAssistant: widget key ${key} refused (${error.code || res.status}). ${error.message || ''}`.trim());
      }
    } catch (e) {
      report(e);
    }
    return null;
  };

  let appLoading = null;
  const loadApp = () => {
    if (!appLoading) {
      appLoading = new Promise((resolve) => {
        if (typeof win.ChapiAssistant._app === 'function') return resolve(true);
        const script = doc.createElement('script');
        script.src = APP_URL;
        script.async = true;
        if (nonce) script.nonce = nonce;
        script.onload = () => resolve(true);
        script.onerror = () => {
          appLoading = null; // a later click may try again
          script.remove();
          resolve(false);
        };
        (doc.head || doc.documentElement).append(script);
        return undefined;
      });
    }
    return appLoading;
  };

  const idle = (fn) => {
    if (typeof win.requestIdleCallback === 'function') win.requestIdleCallback(fn, { timeout: 5000 });
    else setTimeout(fn, 1500);
  };

  // Draws one widget; calls `drawn(controls)` once the launcher (or, inline, the panel) is there.
  const start = async (o, drawn) => {
    const key = o.widgetKey;
    if (typeof key !== 'string' || !key) {
      console.warn('ChapiAssistant: the widgetKey option is missing.');
      return;
    }
    const base = String(o.baseUrl || SCRIPT_BASE).replace(/\/+$/, '');
    if (!base) return;
    const config = await fetchConfig(base, key);
    if (!config) return;

    const theme = config.theme || {};
    const s = {
      key,
      base,
      botName: String(pick(o.botName, config.botName) || ''),
      companyName: String(pick(o.companyName, config.companyName) || ''),
      welcomeMessage: String(pick(o.welcomeMessage, config.welcomeMessage) || ''),
      language: language(o.language, config),
      primaryColor: color(pick(o.primaryColor, theme.primaryColor)),
      position: pick(o.position, theme.position) === 'left' ? 'left' : 'right',
      launcherText: String(pick(o.launcherText, theme.launcherText) || ''),
      avatarUrl: httpUrl(pick(o.avatarUrl, theme.avatarUrl)),
      theme: ['light', 'dark'].includes(pick(o.theme, theme.mode)) ? pick(o.theme, theme.mode) : 'auto',
      mode: o.mode === 'inline' ? 'inline' : 'launcher',
      open: o.open === true,
      context: o.context && typeof o.context === 'object' ? o.context : {},
      prechat: config.prechat && typeof config.prechat === 'object' ? config.prechat : {},
      hours: config.hours && typeof config.hours === 'object' ? config.hours : {},
      socketUrl:
        typeof config.socketUrl === 'string' && config.socketUrl
          ? config.socketUrl
          : `${base.replace(/^http/, 'ws')}/ws/widget/?key=${encodeURIComponent(key)}`,
    };
    const T = STRINGS[s.language];
    const inline = s.mode === 'inline';

    const host = el('div', {
      'data-chapi-widget': '',
      'data-position': s.position,
      'data-theme': s.theme,
      'data-mode': s.mode,
      lang: s.language,
    });
    host.style.setProperty('--chapi-primary', s.primaryColor);
    host.style.setProperty('--chapi-on-primary', onColor(s.primaryColor));
    const root = host.attachShadow({ mode: 'open' });
    adopt(root, CSS);

    let launcher = null;
    let badge = null;
    let app = null;
    let wanted = s.open || inline;
    if (!inline) {
      badge = el('span', { class: 'badge', 'data-chapi': 'badge', 'aria-hidden': 'true', hidden: true });
      launcher = el(
        'button',
        {
          type: 'button',
          class: 'launcher',
          'data-chapi': 'launcher',
          'aria-label': T.open,
          'aria-expanded': 'false',
          'aria-haspopup': 'dialog',
          onclick: () => (app ? app.toggle() : ((wanted = !wanted), wanted && boot())),
        },
        icon('chat', 'i-chat'),
        icon('close', 'i-close'),
        s.launcherText ? el('span', { class: 'launcher-text', text: s.launcherText }) : null,
        badge,
      );
      root.append(launcher);
    }
    containerFor(o.container).append(host);

    let unread = 0;
    let opened = false;
    const label = () => {
      if (launcher) launcher.setAttribute('aria-label', opened ? T.close : unread ? `${T.open} (${T.unread(unread)})` : T.open);
    };
    // What the chat (chapi-widget-app.js) gets from the loader.
    const w = {
      s,
      host,
      root,
      launcher,
      el,
      icon,
      safe,
      store,
      uuid,
      adopt: (css) => adopt(root, css),
      setOpen(open) {
        opened = open;
        if (open) host.setAttribute('data-open', '');
        else host.removeAttribute('data-open');
        if (launcher) launcher.setAttribute('aria-expanded', String(open));
        label();
      },
      setUnread(count) {
        unread = count;
        if (badge) {
          badge.textContent = count > 9 ? '9+' : String(count);
          badge.hidden = !count;
        }
        label();
      },
    };

    const boot = () =>
      loadApp()
        .then(
          safe((ok) => {
            const factory = win.ChapiAssistant._app;
            if (!ok || app || typeof factory !== 'function') return;
            app = factory(w);
            if (wanted) app.open();
            if (inline) drawn(controls);
          }),
        )
        .catch(report);

    const controls = {
      open() {
        wanted = true;
        if (app) app.open();
        else boot();
      },
      close() {
        wanted = false;
        if (app) app.close();
      },
    };
    if (inline || s.open) boot();
    else idle(safe(boot));
    if (!inline) drawn(controls);
  };

  const whenDom = (fn) => {
    if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', fn, { once: true });
    else fn();
  };

  const instances = [];

  /**
   * `new ChapiAssistant({widgetKey: 'pk_…', …})`: one widget. The instance has `open()`,
   * `close()` and `ready`, a promise resolved (never rejected) once the launcher is drawn.
   */
  function ChapiAssistant(options) {
    if (!(this instanceof ChapiAssistant)) return new ChapiAssistant(options);
    const o = options && typeof options === 'object' ? options : {};
    if (o.debug === true) debug = true;
    let controls = null;
    let pending = null; // 'open' or 'close' asked before the widget was drawn
    let resolveReady = noop;
    const ready = new Promise((resolve) => {
      resolveReady = resolve;
    });
    const self = this;
    const call = (name) =>
      safe(() => {
        if (controls) controls[name]();
        else pending = name;
      });
    Object.defineProperties(this, {
      ready: { value: ready, enumerable: true },
      open: { value: call('open') },
      close: { value: call('close') },
    });
    Object.freeze(this);
    instances.push(this);
    whenDom(
      safe(() => {
        start(
          o,
          safe((c) => {
            controls = c;
            if (pending) c[pending]();
            resolveReady(self);
          }),
        ).catch(report);
      }),
    );
  }
  Object.defineProperties(ChapiAssistant, {
    _chapi: { value: true },
    instances: { get: () => instances.slice() },
  });

  const queued = (previous && Array.isArray(previous.q) && previous.q) || [];
  win.ChapiAssistant = ChapiAssistant;
  for (const options of queued) {
    try {
      new ChapiAssistant(options);
    } catch (e) {
      report(e);
    }
  }
})();
