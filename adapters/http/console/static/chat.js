// Parley console chat: send a message and show the reply as it streams.
// The stream is the API's server-sent events over POST (delta, message, done, error), read
// with fetch() and a ReadableStream. Every text goes in with textContent; the finished
// messages come back from the server already rendered (and escaped) as list items.
(function () {
  "use strict";
  var form = document.getElementById("chat-form");
  if (!form || !window.fetch || !window.ReadableStream || !window.TextDecoder) {
    return; // the form still posts without the script
  }
  var list = document.getElementById("messages");
  var json = document.getElementById("reply-json");
  var status = document.getElementById("chat-status");
  var button = form.querySelector("button[type=submit]");
  var textarea = form.querySelector("textarea");
  var csrf = form.querySelector("input[name=csrf]").value;

  function lastSeq() {
    var items = list.querySelectorAll("li[data-seq]");
    return items.length ? Number(items[items.length - 1].getAttribute("data-seq")) : 0;
  }

  function bubble(role, text) {
    var item = document.createElement("li");
    item.className = "message " + role + " pending";
    var meta = document.createElement("p");
    meta.className = "meta";
    var who = document.createElement("strong");
    who.className = "author";
    who.textContent = role === "user" ? "You" : "Agent";
    meta.appendChild(who);
    var body = document.createElement("div");
    body.className = "text streaming";
    body.textContent = text;
    item.appendChild(meta);
    item.appendChild(body);
    list.appendChild(item);
    item.scrollIntoView({ block: "end" });
    return item;
  }

  // Split complete frames off the buffer; returns what is left of an unfinished frame.
  function frames(buffer, onEvent) {
    var parts = buffer.split(/\r?\n\r?\n/);
    var rest = parts.pop();
    parts.forEach(function (frame) {
      var event = "message";
      var data = [];
      frame.split(/\r?\n/).forEach(function (line) {
        if (!line || line.charAt(0) === ":") return;
        var colon = line.indexOf(":");
        var field = colon < 0 ? line : line.slice(0, colon);
        var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      });
      if (data.length) onEvent(event, JSON.parse(data.join("\n")));
    });
    return rest;
  }

  async function failure(response) {
    try {
      var body = await response.json();
      return new Error(body.error.message);
    } catch (ignored) {
      return new Error("the server answered " + response.status);
    }
  }

  async function send(text) {
    var after = lastSeq();
    var mine = bubble("user", text);
    var reply = bubble("assistant", "");
    var body = reply.querySelector(".text");
    reply.setAttribute("aria-busy", "true");
    status.textContent = "The agent is answering…";
    var response = await fetch(form.getAttribute("data-stream"), {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "X-CSRF-Token": csrf
      },
      body: JSON.stringify({ text: text })
    });
    if (!response.ok) throw await failure(response);
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var final = null;
    var problem = null;
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer = frames(buffer + decoder.decode(chunk.value, { stream: true }), function (event, data) {
        if (event === "delta") body.textContent = data.text;
        else if (event === "message") final = data;
        else if (event === "error") problem = new Error(data.error.message);
      });
    }
    if (problem) throw problem;
    if (!final) throw new Error("the stream ended before the reply was complete");
    json.textContent = final.data ? JSON.stringify(final.data, null, 2) : "This reply has no structured JSON.";
    var rendered = await fetch(form.getAttribute("data-fragment") + "?after=" + after, {
      credentials: "same-origin"
    });
    if (rendered.ok) {
      var html = await rendered.text();
      mine.remove();
      reply.remove();
      list.insertAdjacentHTML("beforeend", html); // server-rendered and escaped
    } else {
      reply.removeAttribute("aria-busy");
    }
    status.textContent = final.failed ? "The agent could not answer; try again." : "Reply complete.";
    if (final.closed) {
      form.hidden = true;
      status.textContent = "The conversation is closed.";
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = textarea.value.trim();
    if (!text) return;
    button.disabled = true;
    textarea.value = "";
    send(text)
      .catch(function (error) {
        var busy = list.querySelector("li[aria-busy]");
        if (busy) busy.removeAttribute("aria-busy");
        status.textContent = "Failed: " + error.message;
      })
      .finally(function () {
        button.disabled = false;
        textarea.focus();
      });
  });

  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      form.requestSubmit();
    }
  });
})();
