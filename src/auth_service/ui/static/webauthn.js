// WebAuthn glue of the hosted pages: the only script they load, from our own origin.
//
// A form marked data-webauthn="create" or "get" runs the browser's passkey prompt when it is
// submitted, puts the result (JSON) into its hidden "credential" input and posts itself as a
// normal form. The options come from data-options (JSON in the page) or from a POST of the
// form to data-options-url (which may also return "flow" or "registration_token" for hidden
// inputs of those names). No inline script, so the page CSP stays default-src 'self'.
(function () {
  "use strict";

  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) return null;
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
  }

  function creationOptions(o) {
    return Object.assign({}, o, {
      challenge: toBytes(o.challenge),
      user: Object.assign({}, o.user, { id: toBytes(o.user.id) }),
      excludeCredentials: descriptors(o.excludeCredentials),
    });
  }

  function requestOptions(o) {
    return Object.assign({}, o, {
      challenge: toBytes(o.challenge),
      allowCredentials: descriptors(o.allowCredentials),
    });
  }

  function asJSON(credential) {
    var r = credential.response;
    var out = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || null,
      response: { clientDataJSON: toText(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      out.response.userHandle = toText(r.userHandle);
    }
    return out;
  }

  function setField(form, name, value) {
    var input = form.querySelector('input[name="' + name + '"]');
    if (input && value !== undefined && value !== null) input.value = value;
  }

  function showError(form) {
    var box = form.querySelector("[data-webauthn-error]");
    if (box) {
      box.textContent = form.getAttribute("data-error") || "";
      box.hidden = false;
    }
  }

  function options(form) {
    var inline = form.getAttribute("data-options");
    if (inline) return Promise.resolve(JSON.parse(inline));
    var body = new URLSearchParams(new FormData(form));
    return fetch(form.getAttribute("data-options-url"), {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) throw new Error("options " + response.status);
      return response.json();
    });
  }

  function ceremony(form) {
    var kind = form.getAttribute("data-webauthn");
    return options(form).then(function (found) {
      setField(form, "flow", found.flow);
      setField(form, "registration_token", found.registration_token);
      var publicKey = found.publicKey || found;
      if (kind === "create") {
        return navigator.credentials.create({ publicKey: creationOptions(publicKey) });
      }
      return navigator.credentials.get({ publicKey: requestOptions(publicKey) });
    });
  }

  function onSubmit(event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-webauthn]")) return;
    event.preventDefault();
    if (!window.PublicKeyCredential) {
      showError(form);
      return;
    }
    ceremony(form)
      .then(function (credential) {
        setField(form, "credential", JSON.stringify(asJSON(credential)));
        form.submit();
      })
      .catch(function () {
        showError(form);
      });
  }

  document.addEventListener("submit", onSubmit);
})();
