/* aisle agent console: a live queue (pushed by the server, ranked by risk, with reasons), live transcript, shopper panel, drafts, takeover, replies, release.
   Text is set with textContent. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var ws = null, me = null, open = null, owner = null, sent = 0, draftId = null, rows = [];

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function send(frame) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame)); }

  function waited(since) {
    if (!since) return "";
    var min = Math.max(0, Math.round((Date.now() - Date.parse(since)) / 60000));
    return min < 1 ? "waiting <1 min" : min < 60 ? "waiting " + min + " min" : "waiting " + Math.floor(min / 60) + " h " + (min % 60) + " min";
  }
  function drawQueue(conversations) {  // ranked by the server: asked for a human, then risk, then the longest wait
    if (conversations) rows = conversations;
    var list = $("queue"); list.textContent = "";
    rows.forEach(function (c) {
      var score = (c.risk && c.risk.score) || 0;
      var item = el("li", (c.conversation_id === open ? "open" : "") + (c.handoff_requested ? " asked" : ""));
      item.dataset.id = c.conversation_id;
      var top = el("div", "row");
      top.appendChild(el("strong", "shopper", c.shopper));
      top.appendChild(el("span", "risk" + (score >= 0.3 ? " high" : ""), score.toFixed(2)));
      item.appendChild(top);
      item.appendChild(el("div", "reason", c.reason));
      item.appendChild(el("div", "last", "“" + c.last_message + "”"));
      var foot = el("div", "row muted");
      foot.appendChild(el("span", "waited", waited(c.waiting_since)));
      var who = c.state === "agent" ? (me && c.agent_id === me.agent_id ? "yours" : c.agent) : c.handoff_requested ? "needs an agent" : "assistant";
      foot.appendChild(el("span", "pill owner", who));
      item.appendChild(foot);
      item.addEventListener("click", function () { watch(c.conversation_id); });
      list.appendChild(item);
    });
  }
  function cards(list, products) {
    list.textContent = "";
    (products || []).forEach(function (p) {
      var item = el("li");
      item.appendChild(el("div", "", p.title));
      var row = el("div", "muted");
      row.appendChild(el("span", "price", p.price_text || (p.currency + " " + Number(p.price).toFixed(2))));
      row.appendChild(document.createTextNode((p.availability ? " · " + p.availability : "") + " · " + p.sku + (p.reason ? " · " + p.reason : "")));
      item.appendChild(row);
      list.appendChild(item);
    });
  }
  function drawContext(c) {
    var dl = $("signals"); dl.textContent = "";
    var s = c.signals || {}, risk = c.risk || {};
    [["risk", risk.score !== undefined ? risk.score.toFixed(2) : "-"],
     ["churn", risk.churn !== null && risk.churn !== undefined ? risk.churn.toFixed(2) : "-"],
     ["mood", s.sentiment ? s.sentiment.label + " (" + s.sentiment.negative.toFixed(2) + " negative)" : "-"],
     ["intent", s.intent ? s.intent.label : "-"],
     ["why", c.flagged_reason || risk.reason || "-"],
     ["about", (c.state && c.state.summary) || "-"]].forEach(function (pair) {
      dl.appendChild(el("dt", "", pair[0])); dl.appendChild(el("dd", "", pair[1]));
    });
    drawMood(c.mood || []);
    var orders = $("orders"); orders.textContent = "";
    (c.orders || []).forEach(function (o) {
      var item = el("li", "order " + o.status);
      item.appendChild(el("div", "", o.number + " · " + o.status));
      item.appendChild(el("div", "muted", (o.created_at || "").slice(0, 10) + " · " + o.items + " item" + (o.items === 1 ? "" : "s") + " · " + Number(o.total).toFixed(2)));
      orders.appendChild(item);
    });
    if (!(c.orders || []).length) orders.appendChild(el("li", "muted", "No orders"));
    cards($("shown"), c.shown);
    var p = c.profile;
    $("profile").textContent = p ? p.summary + " · " + p.events + " events" : "No profile (personalization is off).";
    cards($("recommended"), c.recommended);
  }
  function drawMood(points) {  // P(negative) of each shopper message, oldest left; red above one half
    var svg = $("mood"), ns = "http://www.w3.org/2000/svg"; svg.textContent = "";
    var mid = document.createElementNS(ns, "line");
    [["x1", 0], ["x2", 240], ["y1", 24], ["y2", 24], ["class", "midline"]].forEach(function (a) { mid.setAttribute(a[0], a[1]); });
    svg.appendChild(mid);
    var step = points.length > 1 ? 228 / (points.length - 1) : 0;
    var xy = points.map(function (p, i) { return [6 + i * step, 44 - p.negative * 40]; });
    if (xy.length > 1) {
      var path = document.createElementNS(ns, "polyline");
      path.setAttribute("points", xy.map(function (q) { return q[0].toFixed(1) + "," + q[1].toFixed(1); }).join(" "));
      path.setAttribute("class", "trend"); svg.appendChild(path);
    }
    xy.forEach(function (q, i) {
      var dot = document.createElementNS(ns, "circle");
      dot.setAttribute("cx", q[0].toFixed(1)); dot.setAttribute("cy", q[1].toFixed(1)); dot.setAttribute("r", 3);
      dot.setAttribute("class", points[i].negative >= 0.5 ? "dot bad" : "dot");
      var tip = document.createElementNS(ns, "title"); tip.textContent = points[i].label + " (" + points[i].negative.toFixed(2) + " negative)";
      dot.appendChild(tip); svg.appendChild(dot);
    });
  }
  function clearDraft() { draftId = null; $("reply").classList.remove("drafted"); cards($("draft-products"), []); }
  function watch(id) {
    open = id; $("transcript").textContent = ""; $("title").textContent = "Conversation " + id;
    clearDraft(); $("draft").disabled = false;
    send({ type: "conversation.watch", conversation_id: id });
    drawQueue();
  }
  function line(m) {
    var old = document.querySelector('#transcript [data-id="' + m.id + '"]');
    if (old && !old.classList.contains("streaming")) return;
    if (old) old.remove();  // a reply streamed so far: its finished form replaces it
    var node = el("li", "msg " + m.role);
    node.dataset.id = m.id;
    var signals = m.meta && m.meta.signals, tag = m.role;
    if (m.role === "shopper" && signals && signals.sentiment) tag += " · " + signals.sentiment.label;
    if (m.meta && m.meta.status && m.meta.status !== "completed") tag += " · " + m.meta.status;
    if (m.role !== "system") node.appendChild(el("span", "tag", tag));
    node.appendChild(document.createTextNode(m.text));
    $("transcript").appendChild(node);
    $("transcript").scrollTop = $("transcript").scrollHeight;
  }
  function delta(id, text) {  // a bot reply as the model writes it
    var node = document.querySelector('#transcript [data-id="' + id + '"]');
    if (!node) {
      node = el("li", "msg assistant streaming"); node.dataset.id = id;
      node.appendChild(el("span", "tag", "assistant · writing")); node.appendChild(document.createTextNode(""));
      $("transcript").appendChild(node);
    }
    if (!node.classList.contains("streaming")) return;
    node.lastChild.textContent += text;
    $("transcript").scrollTop = $("transcript").scrollHeight;
  }
  function setState(state, agentId) {
    owner = state === "agent" ? agentId : null;
    var mine = owner === me.agent_id;
    $("state").textContent = state === "agent" ? (mine ? "you have it" : "another agent has it") : state;
    $("takeover").disabled = open === null || (state === "agent");
    $("release").disabled = !mine;
    $("text").disabled = $("send").disabled = !mine;
    $("text").placeholder = mine ? "Write to the shopper" : "Take over to reply";
  }
  function onFrame(f) {
    switch (f.type) {
      case "agent.ready":
        me = f; $("who").textContent = f.name + " (" + f.role + ")";
        $("assign").hidden = f.role !== "supervisor"; $("assign").textContent = "";
        $("assign").appendChild(el("option", "", "Assign to…"));
        (f.team || []).forEach(function (a) { var o = el("option", "", a.name); o.value = a.id; $("assign").appendChild(o); });
        break;
      case "queue.snapshot": drawQueue(f.conversations); break;
      case "conversation.transcript":
        if (f.conversation_id !== open) break;
        f.messages.forEach(line); setState(f.state, f.agent_id); drawContext(f.context || {}); break;
      case "draft.started":
        if (f.conversation_id !== open) break;
        draftId = f.draft_id; $("text").value = ""; cards($("draft-products"), f.products); break;
      case "draft.delta":
        if (f.conversation_id === open && f.draft_id === draftId) $("text").value += f.text;
        break;
      case "message.delta":
        if (f.conversation_id === open) delta(f.id, f.text);
        break;
      case "draft.created":
        if (f.conversation_id !== open) break;
        draftId = f.draft_id; $("text").value = f.text; $("reply").classList.add("drafted");
        cards($("draft-products"), f.products); $("draft").disabled = false; $("draft").textContent = "Draft a reply";
        break;
      case "conversation.state": if (f.conversation_id === open) setState(f.state, f.agent_id); break;
      case "message.created": case "message.completed":
        if (f.conversation_id === open) line({ id: f.id, role: f.role || "assistant", text: f.text, meta: f.meta });
        break;
      case "error": $("state").textContent = f.message; $("draft").disabled = open === null; $("draft").textContent = "Draft a reply"; break;
    }
  }
  function connect(token) {
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(proto + "//" + location.host + "/ws/agent?token=" + encodeURIComponent(token));
    ws.onmessage = function (e) { try { onFrame(JSON.parse(e.data)); } catch (err) { /* ignore bad frames */ } };
    ws.onopen = function () { $("login").hidden = true; $("desk").hidden = false; if (open !== null) watch(open); };
    ws.onclose = function (e) {
      if (e.code === 1008) { sessionStorage.removeItem("aisle.agent"); $("desk").hidden = true; $("login").hidden = false; return; }
      setTimeout(function () { connect(token); }, 2000);
    };
  }
  $("login").addEventListener("submit", function (e) {
    e.preventDefault();
    fetch("/api/agent/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: $("name").value, password: $("password").value }) })
      .then(function (r) { return r.json().then(function (body) { if (!r.ok) throw new Error(body.detail || r.status); return body; }); })
      .then(function (s) { sessionStorage.setItem("aisle.agent", s.token); $("login-error").textContent = ""; connect(s.token); })
      .catch(function (err) { $("login-error").textContent = String(err.message || err); });
  });
  $("takeover").addEventListener("click", function () {
    send({ type: "conversation.takeover", conversation_id: open }); $("takeover").disabled = true;
  });
  $("assign").addEventListener("change", function () {
    if (open !== null && $("assign").value) send({ type: "conversation.assign", conversation_id: open, agent_id: Number($("assign").value) });
    $("assign").selectedIndex = 0;
  });
  setInterval(function () { drawQueue(); }, 30000);  // the waiting times tick on; the rows themselves are pushed
  $("release").addEventListener("click", function () { send({ type: "conversation.release", conversation_id: open }); });
  $("draft").addEventListener("click", function () {
    send({ type: "draft.create", conversation_id: open }); $("draft").disabled = true; $("draft").textContent = "Drafting…";
  });
  $("text").addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("reply").requestSubmit(); }
  });
  $("reply").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = $("text").value.trim();
    if (!text || open === null) return;
    sent += 1;
    var frame = { type: "message.create", conversation_id: open, client_id: "c" + Date.now() + "-" + sent, text: text };
    if (draftId !== null) frame.draft_id = draftId;  // the draft and what was actually sent are both kept
    send(frame);
    $("text").value = ""; clearDraft();
  });
  var saved = sessionStorage.getItem("aisle.agent");
  if (saved) connect(saved);
})();
