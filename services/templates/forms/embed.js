/* A Threadline web form ("{{ slug }}"). Paste this where the form should appear:
 *   <script src="https://YOUR-THREADLINE/forms/{{ slug }}/embed.js" data-threadline-form="{{ slug }}" async></script>
 * (or add data-threadline-target="#css-selector" to place it elsewhere). It renders the form
 * into the page and posts it as JSON to the server the script came from.
 */
(function () {
  "use strict";
  var config = {{ config|tojson }};
  var script = document.currentScript;
  if (!script || script.getAttribute("data-threadline-form") !== config.slug) {
    script = document.querySelector('script[data-threadline-form="' + config.slug + '"]');
  }
  if (!script) { return; }
  if (script.getAttribute("data-threadline-rendered")) { return; }
  script.setAttribute("data-threadline-rendered", "1");
  var action = new URL(script.src, window.location.href).origin + "/forms/" + encodeURIComponent(config.slug);
  var inputTypes = { email: "email", phone: "tel", number: "number", date: "date", text: "text" };

  function el(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (value === true) { node.setAttribute(name, ""); }
      else if (value !== false && value !== null && value !== undefined) { node.setAttribute(name, String(value)); }
    });
    if (text) { node.textContent = text; }
    return node;
  }

  function newToken() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  var container;
  var target = script.getAttribute("data-threadline-target");
  if (target) { container = document.querySelector(target); }
  if (!container) {
    container = el("div");
    script.parentNode.insertBefore(container, script.nextSibling);
  }
  // Plain default looks; a site restyles them through the threadline-* classes.
  if (!document.getElementById("threadline-form-style")) {
    var style = el("style", { id: "threadline-form-style" });
    style.textContent =
      ".threadline-form{max-width:32rem}" +
      ".threadline-form .threadline-field{margin:0 0 .9rem}" +
      ".threadline-form .threadline-field>label{display:block;font-weight:600;margin:0 0 .25rem}" +
      ".threadline-form .threadline-check>label{display:inline;font-weight:400;margin-left:.4rem}" +
      ".threadline-form input:not([type=checkbox]),.threadline-form select,.threadline-form textarea" +
      "{box-sizing:border-box;width:100%;padding:.45rem .55rem;font:inherit}" +
      ".threadline-form textarea{min-height:6rem}" +
      ".threadline-form button{font:inherit;padding:.5rem 1.2rem;cursor:pointer}" +
      ".threadline-form .threadline-error{color:#b3261e;font-size:.9em;margin-top:.2rem}" +
      ".threadline-form .threadline-consent-text{margin:.3rem 0 0 1.6rem;font-size:.9em}" +
      ".threadline-form .threadline-consent-body{white-space:pre-wrap;max-height:16rem;overflow:auto}" +
      ".threadline-form .threadline-status{margin-top:.6rem}";
    (document.head || document.documentElement).appendChild(style);
  }
  container.classList.add("threadline-form");
  container.setAttribute("data-threadline-state", "ready");

  var form = el("form", { novalidate: true, "data-threadline-form": config.slug });
  var token = newToken();
  var hasFiles = false;
  var errorNodes = {};

  config.fields.forEach(function (field) {
    var id = "threadline-" + config.slug + "-" + field.name;
    if (field.type === "hidden") {
      form.appendChild(el("input", { type: "hidden", name: field.name, value: field["default"] }));
      return;
    }
    var wrapper = el("div", {
      "class": "threadline-field" + (field.type === "checkbox" ? " threadline-check" : ""),
      "data-field": field.name
    });
    var label = el("label", { "for": id }, field.label + (field.required ? " *" : ""));
    var input;
    if (field.type === "textarea") {
      input = el("textarea", { id: id, name: field.name, maxlength: field.max_length, placeholder: field.placeholder || null, required: field.required });
      input.value = field["default"] || "";
    } else if (field.type === "select") {
      input = el("select", { id: id, name: field.name, required: field.required });
      input.appendChild(el("option", { value: "" }, "—"));
      field.options.forEach(function (option) {
        var node = el("option", { value: option }, option);
        if (option === field["default"]) { node.selected = true; }
        input.appendChild(node);
      });
    } else if (field.type === "checkbox") {
      input = el("input", { type: "checkbox", id: id, name: field.name, value: "yes", required: field.required });
    } else if (field.type === "file") {
      hasFiles = true;
      input = el("input", { type: "file", id: id, name: field.name, required: field.required });
    } else {
      input = el("input", { type: inputTypes[field.type] || "text", id: id, name: field.name, value: field["default"] || null, placeholder: field.placeholder || null, required: field.required });
      if (field.type !== "number" && field.type !== "date") { input.setAttribute("maxlength", field.max_length); }
    }
    if (field.type === "checkbox") { wrapper.appendChild(input); wrapper.appendChild(label); }
    else { wrapper.appendChild(label); wrapper.appendChild(input); }
    var error = el("div", { "class": "threadline-error", role: "alert" });
    error.hidden = true;
    wrapper.appendChild(error);
    errorNodes[field.name] = error;
    form.appendChild(wrapper);
  });

  // Consent: a separate box per purpose, never ticked for the client, with the full text the
  // client agrees to (and its version) readable right beside it.
  (config.consents || []).forEach(function (consent) {
    var id = "threadline-" + config.slug + "-consent-" + consent.purpose;
    var wrapper = el("div", { "class": "threadline-field threadline-check threadline-consent", "data-consent": consent.purpose });
    var input = el("input", { type: "checkbox", id: id, name: consent.name, value: "yes", required: consent.required });
    wrapper.appendChild(input);
    wrapper.appendChild(el("label", { "for": id }, consent.title + (consent.required ? " *" : "")));
    if (consent.text) {
      var details = el("details", { "class": "threadline-consent-text" });
      details.appendChild(el("summary", null, "Read the full text" + (consent.text_version ? " (version " + consent.text_version + ")" : "")));
      details.appendChild(el("div", { "class": "threadline-consent-body" }, consent.text));
      wrapper.appendChild(details);
    }
    var error = el("div", { "class": "threadline-error", role: "alert" });
    error.hidden = true;
    wrapper.appendChild(error);
    errorNodes[consent.name] = error;
    form.appendChild(wrapper);
  });

  // The honeypot: people never see it, bots fill it in.
  var trap = el("div", { "aria-hidden": "true", style: "position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden" });
  trap.appendChild(el("input", { type: "text", name: config.honeypot, tabindex: "-1", autocomplete: "off" }));
  form.appendChild(trap);
  var button = el("button", { type: "submit" }, config.submit_label);
  form.appendChild(button);
  var status = el("div", { "class": "threadline-status", role: "status" });
  form.appendChild(status);
  container.appendChild(form);

  function payload() {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (input) {
      if (!input.name || input.type === "file") { return; }
      values[input.name] = input.type === "checkbox" ? input.checked : input.value;
    });
    values[config.token_field] = token;
    values[config.referrer_field] = window.location.href;
    var query = new URLSearchParams(window.location.search);
    config.utm_fields.forEach(function (name) {
      if (query.get(name)) { values[name] = query.get(name); }
    });
    return values;
  }

  function request(values) {
    var init = { method: "POST", mode: "cors", credentials: "omit", headers: { Accept: "application/json" } };
    if (hasFiles) {
      var data = new FormData();
      Object.keys(values).forEach(function (name) {
        data.append(name, typeof values[name] === "boolean" ? (values[name] ? "yes" : "") : values[name]);
      });
      Array.prototype.forEach.call(form.querySelectorAll("input[type=file]"), function (input) {
        Array.prototype.forEach.call(input.files, function (file) { data.append(input.name, file); });
      });
      init.body = data;
    } else {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(values);
    }
    return fetch(action, init);
  }

  function showErrors(detail) {
    (detail || []).forEach(function (item) {
      var name = item.loc && item.loc[item.loc.length - 1];
      var node = errorNodes[name];
      if (node) { node.textContent = item.msg; node.hidden = false; }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    Object.keys(errorNodes).forEach(function (name) { errorNodes[name].hidden = true; });
    button.disabled = true;
    status.textContent = "";
    container.setAttribute("data-threadline-state", "sending");
    request(payload()).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.ok) {
          container.setAttribute("data-threadline-state", "sent");
          if (config.thank_you_url) { window.location.href = config.thank_you_url; return; }
          var thanks = el("p", { "class": "threadline-thanks" }, config.thank_you_text);
          container.replaceChild(thanks, form);
          return;
        }
        container.setAttribute("data-threadline-state", "invalid");
        if (response.status === 422) { showErrors(body.detail); status.textContent = "Please correct the marked fields."; }
        else if (response.status === 429) { status.textContent = "Too many submissions; try again in " + (response.headers.get("Retry-After") || "a few") + " seconds."; }
        else { status.textContent = "The form could not be sent (" + response.status + ")."; }
      });
    }).catch(function () {
      container.setAttribute("data-threadline-state", "error");
      status.textContent = "The form could not be sent. Please try again later.";
    }).then(function () { button.disabled = false; });
  });
})();
