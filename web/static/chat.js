/* aisle chat UI (runs inside the widget iframe). Model text is always set with textContent. */
(function () {
  "use strict";
  var params = new URLSearchParams(location.search);
  var parentOrigin = params.get("parent") || "";
  var shopper = params.get("shopper") || "";
  var log = document.getElementById("log");
  var input = document.getElementById("input");
  var statusEl = document.getElementById("status");
  var storeKey = "aisle.session." + (shopper || "anon");
  var ws = null, backoff = 500, seen = {}, pending = {}, lastSeq = 0, human = false;

  function toParent(type) {
    if (parentOrigin && window.parent !== window) window.parent.postMessage({ type: "aisle:" + type }, parentOrigin);
  }
  window.addEventListener("message", function (event) {
    if (event.origin !== parentOrigin || event.source !== window.parent) return;
    if (event.data && event.data.type === "aisle:open") input.focus();
  });
  document.getElementById("close").addEventListener("click", function () { toParent("close"); });
  document.getElementById("human").addEventListener("click", function () {
    send({ type: "handoff.request" });
    note("A colleague will join this chat soon.");
  });
  function note(text) { log.appendChild(el("li", "msg note", text)); scroll(); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function scroll() { log.scrollTop = log.scrollHeight; }
  function bubble(id, role, text) {
    var key = "m" + id, node = seen[key];
    if (!node) {
      node = el("li", "msg " + role, text);
      node.dataset.id = id;
      seen[key] = node;
      log.appendChild(node);
    } else if (text !== undefined) {
      node.textContent = text;
    }
    scroll();
    return node;
  }
  function cards(id, products) {
    if (!products || !products.length || seen["c" + id]) return;
    var row = el("li", "cards"); seen["c" + id] = row;
    products.forEach(function (p) {
      var card = el("div", "card"); card.dataset.sku = p.sku;
      if (typeof p.image_url === "string" && p.image_url.charAt(0) === "/" && p.image_url.charAt(1) !== "/") {
        var img = el("img"); img.alt = ""; img.src = p.image_url; card.appendChild(img);
      }
      card.appendChild(el("div", "t", p.title));
      card.appendChild(el("div", "p", p.price_text || (p.currency + " " + Number(p.price).toFixed(2))));
      card.appendChild(el("div", "s", p.availability));
      var add = el("button", "", "Add to cart"); add.type = "button";
      add.addEventListener("click", function () { send({ type: "event.create", event: "cart", sku: p.sku }); add.textContent = "Added ✓"; });
      card.appendChild(add);
      row.appendChild(card);
    });
    var anchor = seen["m" + id];
    log.insertBefore(row, anchor ? anchor.nextSibling : null);
    scroll();
  }
  // products the reply names, rendered by the server from the catalog: each becomes a chip linked to its card
  function chips(node, id, text, mentions) {
    if (!mentions || !mentions.length) return;
    var rest = text, frag = document.createDocumentFragment();
    mentions.forEach(function (m) {
      var at = rest.indexOf(m.text);
      if (at < 0) return;
      frag.appendChild(document.createTextNode(rest.slice(0, at)));
      var chip = el("a", "mention", m.text); chip.href = "#"; chip.dataset.sku = m.sku;
      chip.addEventListener("click", function (e) {
        e.preventDefault();
        var row = seen["c" + id], card = row && row.querySelector('.card[data-sku="' + CSS.escape(m.sku) + '"]');
        if (!card) return;
        card.scrollIntoView({ block: "nearest", inline: "center" });
        card.classList.add("picked"); setTimeout(function () { card.classList.remove("picked"); }, 1200);
      });
      frag.appendChild(chip);
      rest = rest.slice(at + m.text.length);
    });
    frag.appendChild(document.createTextNode(rest));
    node.textContent = ""; node.appendChild(frag);
  }
  function rate(node, id) {
    if (node.querySelector(".rate")) return;
    var bar = el("span", "rate");
    [[1, "Helpful"], [-1, "Not helpful"]].forEach(function (r) {
      var b = el("button", "", r[1]); b.type = "button"; b.title = "Rate this answer: " + r[1].toLowerCase();
      b.addEventListener("click", function () {
        send({ type: "feedback.create", message_id: id, rating: r[0] });
        bar.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
        b.classList.add("chosen");
      });
      bar.appendChild(b);
    });
    node.appendChild(bar);
  }
  function clearTyping() {
    Object.keys(seen).forEach(function (k) { if (seen[k].dataset && seen[k].dataset.typing) { seen[k].remove(); delete seen[k]; } });
  }
  function send(frame) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame)); }

  function onFrame(frame) {
    if (frame.seq) lastSeq = Math.max(lastSeq, frame.seq);
    switch (frame.type) {
      case "session.ready":
        human = frame.state === "agent";
        statusEl.textContent = human ? "with a colleague" : "online";
        send({ type: "resume", last_seq: lastSeq });
        Object.keys(pending).forEach(function (cid) {  // not acknowledged before the drop: send again
          send({ type: "message.create", client_id: cid, text: pending[cid].textContent });
        });
        break;
      case "message.created":
        if (frame.client_id && pending[frame.client_id]) { pending[frame.client_id].remove(); delete pending[frame.client_id]; }
        if (frame.role === "system") { bubble(frame.id, "note", frame.text); break; }
        if (frame.role === "agent") clearTyping();
        bubble(frame.id, frame.role, frame.text);
        if (frame.role === "shopper" && !human) { var t = bubble("t" + frame.id, "assistant typing", ""); t.dataset.typing = "1"; }
        break;
      case "agent.joined": human = true; clearTyping(); statusEl.textContent = "with " + frame.agent; break;
      case "agent.left": human = false; statusEl.textContent = "online"; break;
      case "message.delta":
        clearTyping();
        var node = bubble(frame.id, "assistant", "");
        node.textContent += frame.text; scroll(); break;
      case "message.completed":
        clearTyping();
        var done = bubble(frame.id, "assistant", frame.text);
        chips(done, frame.id, frame.text, frame.meta && frame.meta.mentions);
        rate(done, frame.id); cards(frame.id, frame.products); break;
      case "error": log.appendChild(el("li", "msg error", frame.message)); scroll(); break;
    }
  }

  function connect(token) {
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(proto + "//" + location.host + "/ws/chat?token=" + encodeURIComponent(token));
    ws.onmessage = function (e) { try { onFrame(JSON.parse(e.data)); } catch (err) { /* ignore bad frames */ } };
    ws.onopen = function () { backoff = 500; };
    ws.onclose = function (e) {
      statusEl.textContent = "reconnecting…";
      if (e.code === 1008) { localStorage.removeItem(storeKey); }
      setTimeout(start, backoff); backoff = Math.min(backoff * 2, 15000);
    };
  }
  function start() {
    var token = localStorage.getItem(storeKey);
    if (token) return connect(token);
    fetch("/api/session", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(shopper ? { shopper_id: shopper } : {}) })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (s) { localStorage.setItem(storeKey, s.token); connect(s.token); })
      .catch(function () { setTimeout(start, backoff); backoff = Math.min(backoff * 2, 15000); });
  }
  document.getElementById("form").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    var cid = (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random();
    pending[cid] = el("li", "msg shopper", text); log.appendChild(pending[cid]); scroll();
    send({ type: "message.create", client_id: cid, text: text });
    input.value = "";
  });
  start();
})();
