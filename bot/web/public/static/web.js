// Forger's public page: sends the form to the API, follows the painting over server-sent events,
// shows the result beside the photo. Same origin only (the page's CSP allows nothing else).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let photoFile = null;
  let source = null;

  function show(el, on) { if (el) el.hidden = !on; }

  function minutes(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return "about " + Math.max(1, Math.round(seconds)) + " s left";
    return "about " + Math.round(seconds / 60) + " min left";
  }

  function render(status) {
    const pct = Math.round(status.progress * 100);
    $("bar").value = pct;
    $("pct").textContent = pct + "%";
    $("eta").textContent = status.state === "done" ? "" : minutes(status.eta_s);
    let line = status.message;
    if (status.state === "queued" && status.position) line = "In the queue: number " + status.position + ".";
    $("status-line").textContent = line;
    $("status-line").dataset.state = status.state;
    const finished = ["done", "failed", "cancelled"].includes(status.state);
    show($("busy-actions"), !finished);
    if (status.state === "done") {
      $("follow-title").textContent = "Your picture is painted";
      $("result-view").src = status.links.result;
      show($("result-wait"), false);
      $("download").href = status.links.result + "?download=true";
      $("share").value = status.links.page;
      show($("done-actions"), true);
    } else if (status.state === "failed" || status.state === "cancelled") {
      $("follow-title").textContent = status.state === "failed" ? "Not painted" : "Cancelled";
      $("result-wait").textContent = status.message;
    }
  }

  function follow(status) {
    show($("follow"), true);
    render(status);
    $("cancel").onclick = () => {
      fetch(status.links.status, { method: "DELETE" }).then((r) => r.json()).then((s) => {
        if (s.state) render(s); else $("status-line").textContent = s.error.message;
      });
    };
    if (["done", "failed", "cancelled"].includes(status.state)) return;
    if (source) source.close();
    source = new EventSource(status.links.events);
    source.addEventListener("status", (e) => {
      const s = JSON.parse(e.data);
      render(s);
      if (["done", "failed", "cancelled"].includes(s.state)) source.close();
    });
    source.addEventListener("error", () => {
      // The browser reconnects by itself; a stream that ended for good is closed above.
    });
  }

  function choosePhoto(input) {
    const file = input.files && input.files[0];
    if (!file) return;
    photoFile = file;
    $("photo-name").textContent = file.name;
    const url = URL.createObjectURL(file);
    $("photo-preview").src = url;
    $("photo-view").src = url;
    show($("photo-preview"), true);
  }

  function error(message) {
    $("form-error").textContent = message;
    show($("form-error"), true);
  }

  function submit(event) {
    event.preventDefault();
    show($("form-error"), false);
    const form = $("paint");
    if (!photoFile) return error("Choose a photo first (or take one).");
    const data = new FormData();
    data.append("photo", photoFile);
    const picked = form.querySelector("input[name=painting_name]:checked");
    if (!picked || picked.value === "") {
      const own = $("own-painting").files[0];
      if (!own) return error("Choose a painting from the gallery, or upload your own.");
      data.append("painting", own);
    } else {
      data.append("painting_name", picked.value);
    }
    data.append("strength", form.strength.value);
    data.append("size", form.size.value);
    data.append("keep_colours", form.keep_colours.checked ? "true" : "false");
    data.append("faces", form.faces.checked ? "true" : "false");
    $("submit").disabled = true;
    fetch(form.action, { method: "POST", body: data })
      .then((r) => r.json().then((body) => ({ ok: r.ok, body })))
      .then(({ ok, body }) => {
        $("submit").disabled = false;
        if (!ok) return error(body.error ? body.error.message : "Something went wrong; please try again.");
        history.pushState(null, "", body.links.page);
        show(form, false);
        follow(body);
      })
      .catch(() => { $("submit").disabled = false; error("The server could not be reached; please try again."); });
  }

  function start() {
    const token = document.body.dataset.token;
    if (token) {  // a painting's own page (a share link)
      $("photo-view").src = "/api/v1/paintings/" + token + "/photo";
      fetch("/api/v1/paintings/" + token).then((r) => r.json()).then((s) => {
        if (s.error) { show($("follow"), true); $("status-line").textContent = s.error.message; return; }
        follow(s);
      });
      return;
    }
    $("photo").addEventListener("change", () => choosePhoto($("photo")));
    $("camera").addEventListener("change", () => choosePhoto($("camera")));
    $("own-painting").addEventListener("change", () => {
      const file = $("own-painting").files[0];
      if (!file) return;
      $("own-choice").checked = true;
      $("own-preview").src = URL.createObjectURL(file);
      show($("own-preview"), true);
      show($("own-label"), false);
      $("own-name").textContent = file.name;
    });
    $("paint").addEventListener("submit", submit);
    $("copy").addEventListener("click", () => {
      $("share").select();
      if (navigator.clipboard) navigator.clipboard.writeText($("share").value);
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
