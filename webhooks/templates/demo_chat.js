// The demo chat page: a WeChat user's view of the official account, played through the WeChat emulator.
// No framework, no build step. Text is always set with textContent (never innerHTML).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const people = JSON.parse($("people").textContent);
  const newcomerNote = JSON.parse($("newcomer").textContent);
  const newcomers = new Set();
  const POLL_MS = 2500;

  let openid = people[0].openid;
  let last = 0; // the last inbox item shown
  let polling = null;
  let busy = false;

  // --- who am I ---------------------------------------------------------------------------------------
  function randomOpenid() {
    const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    const bytes = crypto.getRandomValues(new Uint8Array(27));
    return "o" + Array.from(bytes, (b) => abc[b % abc.length]).join("");
  }

  function followedKey(id) { return "xinma-demo-followed:" + id; }
  function isFollowing(id) {
    const stored = localStorage.getItem(followedKey(id));
    if (stored !== null) return stored === "1";
    return people.some((p) => p.openid === id && p.login); // the demo's bound people follow already
  }
  function setFollowing(id, yes) {
    localStorage.setItem(followedKey(id), yes ? "1" : "0");
    showFollow();
  }
  function showFollow() {
    const yes = isFollowing(openid);
    $("follow-state").textContent = yes ? "已关注“信码”公众号" : "尚未关注“信码”公众号";
    $("follow").classList.toggle("hidden", yes);
    $("unfollow").classList.toggle("hidden", !yes);
  }

  function choose(id) {
    openid = id;
    last = 0;
    $("messages").replaceChildren();
    const p = people.find((x) => x.openid === id);
    const note = p ? p.description : newcomers.has(id) ? newcomerNote : "";
    $("person-note").textContent = (note ? note + " · " : "") + "openid " + id;
    showFollow();
    refresh();
  }

  $("person").addEventListener("change", (e) => {
    const v = e.target.value;
    $("custom-openid").classList.toggle("hidden", v !== "__custom");
    if (v === "__new") {
      const id = randomOpenid();
      newcomers.add(id);
      const opt = new Option("新用户 " + id.slice(0, 10) + "…", id);
      e.target.add(opt, e.target.options.length - 2);
      e.target.value = id;
      choose(id);
    } else if (v === "__custom") {
      $("custom-openid").focus();
    } else {
      choose(v);
    }
  });
  $("custom-openid").addEventListener("change", (e) => {
    const v = e.target.value.trim();
    if (/^[A-Za-z0-9_-]{1,64}$/.test(v)) choose(v);
    else say("system", "openid 应为1到64个字母、数字、下划线或连字符");
  });

  // --- the conversation ---------------------------------------------------------------------------------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function safeUrl(u) {
    return typeof u === "string" && /^https?:\/\//.test(u) ? u : null;
  }

  function card(c) {
    const box = el("div", "card");
    box.append(el("div", "card-title", c.title || ""));
    const body = el("div", "card-body");
    body.append(el("div", "card-desc", c.description || ""));
    if (safeUrl(c.image)) {
      const img = el("img", "card-image");
      img.src = c.image; img.alt = "";
      body.append(img);
    }
    box.append(body);
    const url = safeUrl(c.url);
    if (url) {
      const a = el("a", "card-link", "打开链接");
      a.href = url; a.target = "_blank"; a.rel = "noopener noreferrer";
      box.append(a);
    }
    return box;
  }

  function notice(entry) {
    const box = el("div", "card notice");
    box.append(el("div", "card-title", entry.pushed));
    const dl = el("dl");
    for (const [k, v] of entry.fields || []) {
      dl.append(el("dt", null, k), el("dd", null, v));
    }
    box.append(dl);
    if (entry.template_id) box.append(el("div", "muted small", "模板 " + entry.template_id));
    const url = safeUrl(entry.url);
    if (url) {
      const a = el("a", "card-link", "详情");
      a.href = url; a.target = "_blank"; a.rel = "noopener noreferrer";
      box.append(a);
    } else if (entry.url) {
      box.append(el("div", "muted small", "小程序页面 " + entry.url));
    }
    return box;
  }

  function render(entry) {
    const li = el("li", "msg " + entry.side);
    if (entry.side === "system") {
      li.append(el("span", "system-text", entry.text));
      return li;
    }
    if (entry.side === "bot") li.append(el("span", "avatar", "信"));
    const col = el("div", "col");
    if (entry.pushed) col.append(el("div", "pushed", entry.pushed));
    if (entry.type === "text") {
      col.append(el("div", "bubble", entry.text));
    } else if (entry.type === "image") {
      const img = el("img", "bubble image");
      img.alt = "公众号发来的图片";
      img.src = "/demo/chat/media/" + encodeURIComponent(entry.media_id || "");
      col.append(img);
    } else if (entry.type === "cards") {
      for (const c of entry.cards || []) col.append(card(c));
    } else if (entry.type === "notice") {
      col.append(notice(entry));
    }
    li.append(col);
    return li;
  }

  function append(entries) {
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    for (const e of entries) list.append(render(e));
    if (entries.length && (atBottom || busy)) list.scrollTop = list.scrollHeight;
  }

  function say(side, text) { append([{ side: side, type: "text", text: text }]); }

  async function json(url, options) {
    const r = await fetch(url, options);
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const msg = body && body.error ? body.error.message : "HTTP " + r.status;
      throw new Error(msg);
    }
    return body;
  }

  // One inbox read at a time (polls and sends interleave), and never the same item twice.
  let reading = Promise.resolve();
  function refresh() {
    reading = reading.then(readInbox, readInbox);
    return reading;
  }

  async function readInbox() {
    const asked = openid;
    try {
      const out = await json("/demo/chat/inbox/" + encodeURIComponent(asked) + (last ? "?after=" + last : ""));
      if (asked !== openid) return; // switched person meanwhile
      const fresh = out.entries.filter((e) => e.id > last);
      if (out.last > last) last = out.last;
      append(fresh);
      readInbox.failed = false;
    } catch (e) {
      if (asked === openid && !readInbox.failed) say("system", "读取收件箱失败：" + e.message);
      readInbox.failed = true;
    }
  }

  async function send(message) {
    if (message.type === "text" || message.event === "subscribe") setFollowing(openid, true);
    if (message.event === "unsubscribe") setFollowing(openid, false);
    busy = true;
    try {
      const out = await json("/demo/chat/send", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ openid: openid, message: message, encrypt: $("encrypt").checked }),
      });
      await refresh();
      if (out.status !== 200) say("system", "公众号没有回应（" + (out.error || "HTTP " + out.status) + "）");
      else if (out.error) say("system", "回复无法读取：" + out.error);
    } catch (e) {
      say("system", "发送失败：" + e.message);
    } finally {
      busy = false;
    }
  }

  // --- the official account's menu and the keyboard -------------------------------------------------------
  $("toggle").addEventListener("click", () => {
    const typing = $("keyboard").classList.toggle("hidden") === false;
    $("menu").classList.toggle("hidden", typing);
    $("toggle").textContent = typing ? "☰" : "⌨";
    if (typing) $("text").focus();
  });
  for (const b of document.querySelectorAll("[data-click]")) {
    b.addEventListener("click", () => send({ type: "event", event: "CLICK", key: b.dataset.click }));
  }
  $("keyboard").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    send({ type: "text", content: text });
  });

  function openScan(prefill) {
    $("scan-text").value = prefill || "";
    $("scan-sheet").classList.remove("hidden");
    $("scan-text").focus();
  }
  function scan(result) {
    $("scan-sheet").classList.add("hidden");
    send({ type: "event", event: "scancode_waitmsg", key: "scan", scan_result: result });
  }
  $("menu-scan").addEventListener("click", () => openScan(""));
  $("scan-cancel").addEventListener("click", () => $("scan-sheet").classList.add("hidden"));
  $("scan-send").addEventListener("click", () => {
    const v = $("scan-text").value.trim();
    if (v) scan(v);
  });

  $("follow").addEventListener("click", () => send({ type: "event", event: "subscribe" }));
  $("unfollow").addEventListener("click", () => send({ type: "event", event: "unsubscribe" }));

  // --- the demo helper: what other people do in the mini-program, through the public API -------------------
  function helperError(e) { $("helper-error").textContent = e ? e.message || String(e) : ""; }

  async function demoToken(login) {
    const key = "xinma-demo-token:" + login;
    const cached = sessionStorage.getItem(key);
    if (cached) return cached;
    const out = await json("/api/v1/session/demo", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ account: login }),
    });
    sessionStorage.setItem(key, out.token);
    return out.token;
  }

  async function asDemo(login, url, options) {
    const call = async () => json(url, Object.assign({}, options || {}, {
      headers: Object.assign({ "Authorization": "Bearer " + await demoToken(login) },
        options && options.body ? { "Content-Type": "application/json" } : {}),
    }));
    try {
      return await call();
    } catch (e) {
      sessionStorage.removeItem("xinma-demo-token:" + login); // expired or signed out: once more, fresh
      return call();
    }
  }

  let inviteTicket = null;
  $("invite").addEventListener("click", async () => {
    helperError(null);
    try {
      const me = await asDemo("orgadmin-westlake", "/api/v1/me");
      const role = me.roles.find((r) => r.role === "org_admin" && r.organisation_id);
      const out = await asDemo("orgadmin-westlake",
        "/api/v1/organisations/" + role.organisation_id + "/clerk-invites", { method: "POST" });
      inviteTicket = out.qrcode.ticket;
      $("invite-qr").src = "/demo/chat/qrcode?ticket=" + encodeURIComponent(inviteTicket);
      $("invite-out").classList.remove("hidden");
    } catch (e) { helperError(e); }
  });
  $("invite-scan").addEventListener("click", () => {
    if (!inviteTicket) return;
    // Scanning a parametric code: a follower sends SCAN, anyone else subscribes through it.
    const event = isFollowing(openid) ? "SCAN" : "subscribe";
    send({ type: "event", event: event, ticket: inviteTicket });
  });

  $("holder-code").addEventListener("click", async () => {
    helperError(null);
    try {
      const out = await asDemo($("holder").value, "/api/v1/codes", { method: "POST" });
      $("holder-token").value = out.tokens[0].token;
      $("holder-out").classList.remove("hidden");
    } catch (e) { helperError(e); }
  });
  $("holder-scan").addEventListener("click", () => {
    const v = $("holder-token").value;
    if (v) scan(v);
  });

  let bindingCode = null;
  $("bind-code").addEventListener("click", async () => {
    helperError(null);
    try {
      const out = await asDemo($("binder").value, "/api/v1/me/wechat-binding-code", { method: "POST" });
      bindingCode = out.code;
      $("bind-value").textContent = "绑定 " + out.code;
      $("bind-note").textContent = out.message;
      $("bind-out").classList.remove("hidden");
    } catch (e) { helperError(e); }
  });
  $("bind-send").addEventListener("click", () => {
    if (bindingCode) send({ type: "text", content: "绑定 " + bindingCode });
  });

  // --- go ---------------------------------------------------------------------------------------------
  choose(openid);
  polling = setInterval(() => { if (!busy) refresh(); }, POLL_MS);
  window.addEventListener("beforeunload", () => clearInterval(polling));
})();
