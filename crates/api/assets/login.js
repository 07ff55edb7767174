"use strict";
// The login page: posts the form as JSON, then opens the dashboard. Without this script the
// form posts itself and the server redirects to the dashboard.
(() => {
  const words = {
    "pt-BR": { user: "Usuário", password: "Senha", login: "Entrar", failed: "Usuário ou senha incorretos.", limited: "Tentativas demais: espere um minuto.", expired: "A sessão expirou: entre de novo.", error: "Não foi possível entrar: " },
    en: { user: "User", password: "Password", login: "Log in", failed: "Wrong user name or password.", limited: "Too many attempts: wait a minute.", expired: "The session expired: log in again.", error: "Could not log in: " },
  };
  const params = new URLSearchParams(location.search);
  const known = (l) => (l && Object.prototype.hasOwnProperty.call(words, l) ? l : null);
  let lang = known(localStorage.getItem("expansa.lang")) || known(params.get("lang")) || "pt-BR";
  const $ = (id) => document.getElementById(id);
  const say = (text) => { $("login-status").textContent = text; };
  const translate = () => {
    document.documentElement.lang = lang;
    $("lang").value = lang;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = words[lang][el.dataset.i18n];
  };
  $("lang").addEventListener("change", () => {
    lang = known($("lang").value) || "pt-BR";
    localStorage.setItem("expansa.lang", lang);
    translate();
  });
  translate();
  if (params.get("expired")) say(words[lang].expired);
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    say("");
    const body = JSON.stringify({ user: $("login-user").value.trim(), password: $("login-password").value });
    try {
      const response = await fetch("/login", { method: "POST", headers: { "Content-Type": "application/json" }, body, credentials: "same-origin" });
      if (response.ok) {
        location.assign("/");
        return;
      }
      if (response.status === 401) say(words[lang].failed);
      else if (response.status === 429) say(words[lang].limited);
      else say(words[lang].error + ((await response.json()).error || {}).message);
    } catch (e) {
      say(words[lang].error + e.message);
    }
  });
})();
