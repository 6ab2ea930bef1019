/* aisle widget loader: one <script src="https://SERVER/widget.js" data-shopper-id="..."> tag.
   It injects a launcher bubble and an iframe running the chat UI. Loader and iframe talk
   through postMessage with the "aisle:" prefix, and each side checks the other's origin. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__aisleWidget) return;
  window.__aisleWidget = true;
  var server = new URL(script.src, location.href).origin;
  var params = new URLSearchParams({ parent: location.origin, shopper: script.dataset.shopperId || "" });
  var open = false;

  var frame = document.createElement("iframe");
  frame.src = server + "/static/chat.html?" + params.toString();
  frame.title = "Shop assistant";
  frame.setAttribute("data-aisle", "frame");
  frame.style.cssText = "position:fixed;bottom:92px;right:20px;width:380px;height:560px;max-width:calc(100vw - 24px);" +
    "max-height:calc(100vh - 110px);border:0;border-radius:16px;box-shadow:0 12px 40px rgba(0,0,0,.25);" +
    "z-index:2147483000;display:none;background:transparent;";

  var bubble = document.createElement("button");
  bubble.type = "button";
  bubble.setAttribute("aria-label", "Open the shop assistant");
  bubble.setAttribute("data-aisle", "launcher");
  var svgNS = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(svgNS, "svg");
  icon.setAttribute("viewBox", "0 0 24 24"); icon.setAttribute("width", "28"); icon.setAttribute("height", "28");
  var path = document.createElementNS(svgNS, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
  icon.appendChild(path); bubble.appendChild(icon);
  bubble.style.cssText = "position:fixed;bottom:20px;right:20px;width:60px;height:60px;border-radius:50%;border:0;" +
    "background:#3b5bdb;color:#fff;display:flex;align-items:center;justify-content:center;cursor:pointer;box-shadow:0 6px 20px rgba(59,91,219,.45);z-index:2147483000;";

  function post(type, data) {
    frame.contentWindow && frame.contentWindow.postMessage({ type: "aisle:" + type, data: data || null }, server);
  }
  function toggle(state) {
    open = state === undefined ? !open : state;
    frame.style.display = open ? "block" : "none";
    bubble.style.display = open && window.innerWidth <= 480 ? "none" : "flex";  // the sheet has its own close
    bubble.setAttribute("aria-label", open ? "Close the shop assistant" : "Open the shop assistant");
    post(open ? "open" : "close");
  }
  bubble.addEventListener("click", function () { toggle(); });
  window.addEventListener("message", function (event) {
    if (event.origin !== server || event.source !== frame.contentWindow) return;
    var msg = event.data;
    if (!msg || typeof msg.type !== "string" || msg.type.indexOf("aisle:") !== 0) return;
    if (msg.type === "aisle:close") toggle(false);
  });
  function fit() {  // a full-screen sheet on phones, a floating panel elsewhere
    var phone = window.innerWidth <= 480;
    frame.style.width = phone ? "100vw" : "380px";
    frame.style.height = phone ? "100%" : "560px";
    frame.style.bottom = phone ? "0" : "92px";
    frame.style.right = phone ? "0" : "20px";
    frame.style.maxWidth = phone ? "100vw" : "calc(100vw - 24px)";
    frame.style.maxHeight = phone ? "100%" : "calc(100vh - 110px)";
    frame.style.borderRadius = phone ? "0" : "16px";
  }
  fit();
  window.addEventListener("resize", fit);
  document.body.appendChild(frame);
  document.body.appendChild(bubble);
})();
