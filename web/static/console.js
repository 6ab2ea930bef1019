/* aisle agent console: queue by risk, live transcript, shopper panel, drafts, takeover, replies, release.
   Text is set with textContent. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var ws = null, me = null, open = null, owner = null, sent = 0, refresh = null, draftId = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function send(frame) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame)); }

  function drawQueue(conversations) {
    var list = $("queue"); list.textContent = "";
    conversations.forEach(function (c) {
      var score = (c.risk && c.risk.score) || 0;
      var item = el("li", c.conversation_id === open ? "open" : "");
      var top = el("div", "row");
      top.appendChild(el("span", "", c.shopper));
      top.appendChild(el("span", "risk" + (score >= 0.3 ? " high" : ""), score.toFixed(2)));
      item.appendChild(top);
      var why = el("div", "row");
      why.appendChild(el("span", "muted", c.flagged_reason || (c.risk && c.risk.reason) || ""));
      why.appendChild(el("span", "pill", c.state === "agent" ? (c.agent_id === me.agent_id ? "yours" : "taken") : c.state));
      item.appendChild(why);
      item.appendChild(el("div", "last", c.last_message));
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
      row.appendChild(el("span", "price", p.currency + " " + Number(p.price).toFixed(2)));
      row.appendChild(document.createTextNode(" · " + p.availability + " · " + p.sku + (p.reason ? " · " + p.reason : "")));
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
     ["why", c.flagged_reason || risk.reason || "-"]].forEach(function (pair) {
      dl.appendChild(el("dt", "", pair[0])); dl.appendChild(el("dd", "", pair[1]));
    });
    var p = c.profile;
    $("profile").textContent = p ? p.summary + " · " + p.events + " events" : "No profile (personalization is off).";
    cards($("recommended"), c.recommended);
  }
  function clearDraft() { draftId = null; $("reply").classList.remove("drafted"); cards($("draft-products"), []); }
  function watch(id) {
    open = id; $("transcript").textContent = ""; $("title").textContent = "Conversation " + id;
    clearDraft(); $("draft").disabled = false;
    send({ type: "conversation.watch", conversation_id: id });
    send({ type: "queue.list" });
  }
  function line(m) {
    if (document.querySelector('#transcript [data-id="' + m.id + '"]')) return;
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
      case "agent.ready": me = f; $("who").textContent = f.name + " (" + f.role + ")"; break;
      case "queue.snapshot": drawQueue(f.conversations); break;
      case "conversation.transcript":
        if (f.conversation_id !== open) break;
        f.messages.forEach(line); setState(f.state, f.agent_id); drawContext(f.context || {}); send({ type: "queue.list" }); break;
      case "draft.created":
        if (f.conversation_id !== open) break;
        draftId = f.draft_id; $("text").value = f.text; $("reply").classList.add("drafted");
        cards($("draft-products"), f.products); $("draft").disabled = false; $("draft").textContent = "Draft a reply";
        break;
      case "conversation.state": if (f.conversation_id === open) setState(f.state, f.agent_id); send({ type: "queue.list" }); break;
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
    clearInterval(refresh);
    refresh = setInterval(function () { send({ type: "queue.list" }); }, 5000);
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
