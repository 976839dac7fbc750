/*
 * CHAPI web widget: the loader (docs/widget.md).
 *
 * Defines the one global `ChapiAssistant`, picks up the calls queued by the snippet's stub
 * (`ChapiAssistant.q`), fetches the key's settings, draws the launcher in a shadow root and
 * loads the chat (chapi-widget-app.js, from this file's folder) when the browser is idle or at
 * the first click. Hand-written ES2018: no build step, no dependencies.
 *
 * Nothing here may break the host page: entry points catch their own errors, every promise is
 * handled, and a widget that cannot start shows nothing.
 */
(() => {
  'use strict';

  const doc = document;
  const previous = window.ChapiAssistant;
  if (typeof previous === 'function' && previous._chapi) return; // loaded twice: keep the first

  // An async classic script has currentScript while it first runs.
  const me = doc.currentScript || doc.querySelector('script[src*="chapi-widget.js"]');
  let scriptUrl = null;
  try {
    scriptUrl = new URL(me.src, location.href);
  } catch (e) {
    // no usable src: no server to talk to, the widget stays silent
  }
  // The server is where the loader comes from (the part of its path before /static/).
  let SERVER = '';
  let APP_URL = '';
  if (scriptUrl) {
    const at = scriptUrl.pathname.lastIndexOf('/static/');
    SERVER = scriptUrl.origin + (at > 0 ? scriptUrl.pathname.slice(0, at) : '');
    APP_URL = new URL(`chapi-widget-app.js${scriptUrl.search}`, scriptUrl).href;
  }

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
  gap:8px;height:56px;min-width:56px;padding:0 15px;border-radius:28px;cursor:pointer;font-weight:600;
  background:var(--chapi-primary);color:var(--chapi-on-primary);box-shadow:0 6px 20px rgba(0,0,0,.22)}
.launcher:focus-visible{outline:3px solid var(--chapi-primary);outline-offset:3px}
.launcher svg{width:26px;height:26px;fill:currentColor;flex:none}
`;
  const CHAT_ICON = 'M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2zM7 9h10v2H7zm0-3h10v2H7zm0 6h7v2H7z';

  let debug = false;
  const report = (error) => {
    if (debug) console.warn('ChapiAssistant:', error);
  };
  // An error inside a wrapped function never reaches the host page.
  const safe = (fn) =>
    function (...args) {
      try {
        return fn.apply(this, args);
      } catch (e) {
        report(e);
        return undefined;
      }
    };

  // createElement with attributes (`text` sets textContent, `on…` adds a listener) and children.
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

  const icon = (d, cls) => {
    const svg = doc.createElementNS('http://www.w3.org/2000/svg', 'svg');
    const path = doc.createElementNS('http://www.w3.org/2000/svg', 'path');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    if (cls) svg.setAttribute('class', cls);
    path.setAttribute('d', d);
    svg.append(path);
    return svg;
  };

  // Constructed stylesheets pass a strict style-src; <style> is for browsers without them.
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

  // White or near-black text on the brand colour, whichever contrasts more (WCAG).
  const onColor = (hex) => {
    const h = hex.length < 7 ? hex.slice(1, 4).replace(/./g, '$&$&') : hex.slice(1, 7);
    const [r, g, b] = [0, 2, 4].map((i) => {
      const c = parseInt(h.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    const l = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    return 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 ? '#fff' : '#111827';
  };

  const pick = (option, setting) => (option === undefined || option === null ? setting : option);

  // es or en: the option, else the browser's language (when the key offers it), else the key's.
  const language = (option, config) => {
    const nav = String(navigator.language || '').toLowerCase();
    const browser = nav.startsWith('en') ? 'en' : nav.startsWith('es') ? 'es' : '';
    const offered = Array.isArray(config.languages) && config.languages.length ? config.languages : [browser];
    if (option === 'es' || option === 'en') return option;
    if (browser && offered.includes(browser)) return browser;
    return config.language === 'en' ? 'en' : 'es';
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

  // The key's settings, or null: one console warning for a refused key, silence otherwise.
  const fetchConfig = async (server, key) => {
    try {
      const res = await fetch(`${server}/widget/config?key=${encodeURIComponent(key)}`, {
        credentials: 'omit',
        mode: 'cors',
      });
      const body = await res.json().catch(() => null);
      if (res.ok && body && typeof body === 'object' && !body.error) return body;
      if (res.status === 403 || res.status === 404) {
        const error = (body && body.error) || {};
        console.warn(`ChapiAssistant: widget key ${key} refused (${error.code || res.status}). ${error.message || ''}`);
      }
    } catch (e) {
      report(e);
    }
    return null;
  };

  let appLoading = null;
  const loadApp = () => {
    appLoading =
      appLoading ||
      new Promise((resolve) => {
        const script = el('script', { src: APP_URL, async: true });
        if (me && me.nonce) script.nonce = me.nonce;
        script.onload = () => resolve(true);
        script.onerror = () => {
          appLoading = null; // a later click tries again
          script.remove();
          resolve(false);
        };
        (doc.head || doc.documentElement).append(script);
      });
    return appLoading;
  };

  // Draws one widget and calls `drawn(controls)` once its launcher (inline: its panel) is there.
  const start = async (o, drawn) => {
    const key = o.widgetKey;
    if (typeof key !== 'string' || !key) {
      console.warn('ChapiAssistant: the widgetKey option is missing.');
      return;
    }
    const server = String(o.baseUrl || SERVER).replace(/\/+$/, '');
    const config = server && (await fetchConfig(server, key));
    if (!config) return;

    // Snippet options win over the key's settings. The chat reads the rest of `config` itself.
    const theme = config.theme || {};
    const primary = String(pick(o.primaryColor, theme.primaryColor));
    const look = pick(o.theme, theme.mode);
    const s = {
      key,
      config,
      options: o,
      botName: String(pick(o.botName, config.botName) || ''),
      companyName: String(pick(o.companyName, config.companyName) || ''),
      welcomeMessage: String(pick(o.welcomeMessage, config.welcomeMessage) || ''),
      language: language(o.language, config),
      primaryColor: /^#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(primary) ? primary : '#4f46e5',
      position: pick(o.position, theme.position) === 'left' ? 'left' : 'right',
      launcherText: String(pick(o.launcherText, theme.launcherText) || ''),
      avatarUrl: String(pick(o.avatarUrl, theme.avatarUrl) || ''),
      theme: look === 'light' || look === 'dark' ? look : 'auto',
      mode: o.mode === 'inline' ? 'inline' : 'launcher',
      socketUrl:
        String(config.socketUrl || '') ||
        `${server.replace(/^http/, 'ws')}/ws/widget/?key=${encodeURIComponent(key)}`,
    };
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

    let app = null;
    // Open once the chat is loaded: 'page' (the open option, inline) or 'visitor' (a click,
    // open()), which also moves the focus into the chat.
    let wanted = o.open === true || inline ? 'page' : '';
    const launcher = inline
      ? null
      : el(
          'button',
          {
            type: 'button',
            class: 'launcher',
            'data-chapi': 'launcher',
            'aria-label': s.language === 'en' ? 'Open chat' : 'Abrir chat',
            'aria-expanded': 'false',
            'aria-haspopup': 'dialog',
            onclick: () => (app ? app.toggle() : (wanted = wanted ? '' : 'visitor') && boot()),
          },
          icon(CHAT_ICON, 'i-chat'),
          s.launcherText ? el('span', { class: 'launcher-text', text: s.launcherText }) : null,
        );
    const boot = () =>
      loadApp()
        .then(
          safe((ok) => {
            const factory = window.ChapiAssistant._app;
            if (!ok || app || typeof factory !== 'function') return;
            app = factory({ s, host, root, launcher, el, icon, safe, adopt: (css) => adopt(root, css) });
            if (wanted) app.open(wanted === 'visitor');
            if (inline) drawn(controls);
          }),
        )
        .catch(report);
    const controls = {
      open() {
        wanted = 'visitor';
        if (app) app.open(true);
        else boot();
      },
      close() {
        wanted = '';
        if (app) app.close();
      },
    };

    if (launcher) root.append(launcher);
    containerFor(o.container).append(host);

    if (wanted) boot();
    else if (window.requestIdleCallback) window.requestIdleCallback(safe(boot), { timeout: 5000 });
    else setTimeout(safe(boot), 1500);
    if (!inline) drawn(controls);
  };

  const instances = [];

  /**
   * `new ChapiAssistant({widgetKey: 'pk_…', …})` draws one widget. The instance has `open()`,
   * `close()` and `ready`, a promise resolved with it (never rejected) once the launcher is drawn.
   */
  function ChapiAssistant(options) {
    if (!(this instanceof ChapiAssistant)) return new ChapiAssistant(options);
    const o = options && typeof options === 'object' ? options : {};
    if (o.debug === true) debug = true;
    let controls = null;
    let asked = ''; // open() or close() called before the launcher was drawn
    let resolve = null;
    const ready = new Promise((r) => {
      resolve = r;
    });
    const call = (name) =>
      safe(() => {
        if (controls) controls[name]();
        else asked = name;
      });
    Object.defineProperties(this, {
      ready: { value: ready, enumerable: true },
      open: { value: call('open') },
      close: { value: call('close') },
    });
    Object.freeze(this);
    instances.push(this);
    const go = safe(() => {
      start(
        o,
        safe((c) => {
          controls = c;
          if (asked) c[asked]();
          resolve(this);
        }),
      ).catch(report);
    });
    if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', go, { once: true });
    else go();
  }
  Object.defineProperties(ChapiAssistant, {
    _chapi: { value: true },
    instances: { get: () => instances.slice() },
  });

  const queued = (previous && Array.isArray(previous.q) && previous.q) || [];
  window.ChapiAssistant = ChapiAssistant;
  for (const options of queued) {
    try {
      new ChapiAssistant(options);
    } catch (e) {
      report(e);
    }
  }
})();
