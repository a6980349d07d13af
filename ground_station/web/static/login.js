/* Login page: POST /api/login, errors inline, then go to ?next= (same-origin paths only) or the timeline. */
"use strict";

(function () {
  const form = document.getElementById("login-form");
  const errorBox = document.getElementById("login-error");
  const submit = document.getElementById("login-submit");

  function target() {
    const next = new URLSearchParams(location.search).get("next") || "";
    // Only a local path: "/x" but never "//host" or "/\host" (open redirect).
    return /^\/(?![/\\])/.test(next) && !next.startsWith("/login") ? next : "/timeline";
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const username = form.username.value.trim();
    const password = form.password.value;
    if (!username || !password) {
      showError("Enter your username and password.");
      return;
    }
    errorBox.hidden = true;
    submit.disabled = true;
    submit.textContent = "Logging in…";
    try {
      await SE.api("POST", "/api/login", { username, password }, { allow401: true });
      location.assign(target());
    } catch (err) {
      if (err.status === 401) showError("Wrong username or password.");
      else if (err.status === 429) showError("Too many attempts: wait a moment and try again.");
      else showError(err.message);
      form.password.value = "";
      form.password.focus();
      submit.disabled = false;
      submit.textContent = "Log in";
    }
  });
})();
