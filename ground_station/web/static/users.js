/* Users (admin only; the API answers 403 to anyone else): list, create with a role, change role,
   set password, disable/enable, delete; API tokens: create (the secret is shown once), revoke. */
"use strict";

(async function () {
  const { h, api, isNum, byId: $ } = SE;
  const ROLES = ["viewer", "pilot", "supervisor", "admin"];
  const session = await SE.init("users");

  const notice = $("notice");
  const content = $("users-content");

  const say = (text, kind = "ok") => notice.replaceChildren(h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, text));
  const fail = (err) => {
    if (err.status === 403) return notAllowed();
    notice.replaceChildren(SE.errorBox(err));
  };
  function notAllowed() {
    content.hidden = true;
    notice.replaceChildren(SE.forbidden("manage users and API tokens: this page is for administrators"));
  }
  const roleOptions = (sel, value) => sel.replaceChildren(...ROLES.map((r) => h("option", { value: r, selected: r === value }, r)));

  // ------------------------------------------------------------------------------------------ users
  function userRow(u) {
    const self = u.username === session.username;
    const role = h("select", { "aria-label": `Role of ${u.username}`, disabled: self ? true : null, title: self ? "You cannot change your own role" : null });
    roleOptions(role, u.role);
    role.addEventListener("change", async () => {
      try {
        await api("PATCH", `/api/users/${encodeURIComponent(u.username)}`, { role: role.value });
        say(`${u.username} is now ${role.value}.`);
        await loadUsers();
      } catch (err) {
        role.value = u.role;
        fail(err);
      }
    });

    const actions = h("div", { class: "row-actions" });
    const pwBox = h("div");
    const pwButton = h("button", { type: "button", class: "btn-small" }, "Set password");
    pwButton.addEventListener("click", () => {
      if (pwBox.firstChild) return pwBox.replaceChildren();
      const input = h("input", { type: "password", autocomplete: "new-password", placeholder: "new password", "aria-label": `New password for ${u.username}` });
      const form = h("form", { class: "pw-form" }, input, h("button", { type: "submit", class: "btn-small btn-primary" }, "Save"), h("button", { type: "button", class: "btn-small", onclick: () => pwBox.replaceChildren() }, "Cancel"));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          await api("PATCH", `/api/users/${encodeURIComponent(u.username)}`, { password: input.value });
          pwBox.replaceChildren();
          say(`Password of ${u.username} changed.`);
        } catch (err) {
          fail(err);
        }
      });
      pwBox.replaceChildren(form);
      input.focus();
    });
    const toggle = h("button", { type: "button", class: "btn-small", disabled: self ? true : null }, u.disabled ? "Enable" : "Disable");
    toggle.addEventListener("click", async () => {
      try {
        await api("PATCH", `/api/users/${encodeURIComponent(u.username)}`, { disabled: !u.disabled });
        say(`${u.username} ${u.disabled ? "enabled" : "disabled"}.`);
        await loadUsers();
      } catch (err) {
        fail(err);
      }
    });
    const del = h("button", { type: "button", class: "btn-small btn-danger", disabled: self ? true : null }, "Delete");
    del.addEventListener("click", async () => {
      if (!confirm(`Delete user ${u.username}? This cannot be undone.`)) return;
      try {
        await api("DELETE", `/api/users/${encodeURIComponent(u.username)}`);
        say(`${u.username} deleted.`);
        await loadUsers();
      } catch (err) {
        fail(err);
      }
    });
    actions.append(pwButton, toggle, del);

    return h(
      "tr",
      { class: u.disabled ? "disabled" : null, dataset: { user: u.username } },
      h("td", { "data-label": "User" }, h("strong", null, u.username), self ? h("span", { class: "muted small" }, " (you)") : null),
      h("td", { "data-label": "Role" }, role),
      h("td", { "data-label": "Created", class: "nowrap" }, SE.fmtTime(u.created)),
      h("td", { "data-label": "Status" }, h("span", { class: `badge ${u.disabled ? "bad" : "ok"}` }, u.disabled ? "disabled" : "active")),
      h("td", { "data-label": "Actions" }, h("div", null, actions, pwBox)),
    );
  }

  async function loadUsers() {
    const users = await api("GET", "/api/users");
    $("users-table").tBodies[0].replaceChildren(...users.sort((a, b) => a.username.localeCompare(b.username)).map(userRow));
  }

  $("user-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target;
    const body = { username: f.username.value.trim(), password: f.password.value, role: f.role.value };
    if (!body.username || !body.password) return say("Enter a username and a password.", "error");
    try {
      await api("POST", "/api/users", body);
      f.reset();
      roleOptions(f.role, "viewer");
      say(`User ${body.username} created (${body.role}).`);
      await loadUsers();
    } catch (err) {
      fail(err);
    }
  });

  // ----------------------------------------------------------------------------------------- tokens
  const revoked = (t) => t.revoked !== null && t.revoked !== undefined && t.revoked !== false;

  function tokenRow(t) {
    const revoke = h("button", { type: "button", class: "btn-small btn-danger", disabled: revoked(t) ? true : null }, "Revoke");
    revoke.addEventListener("click", async () => {
      if (!confirm(`Revoke token “${t.name}”? Systems using it lose access at once.`)) return;
      try {
        await api("DELETE", `/api/tokens/${encodeURIComponent(t.id)}`);
        say(`Token “${t.name}” revoked.`);
        await loadTokens();
      } catch (err) {
        fail(err);
      }
    });
    return h(
      "tr",
      { dataset: { token: t.id } },
      h("td", { "data-label": "Name" }, h("strong", null, t.name)),
      h("td", { "data-label": "Role" }, t.role),
      h("td", { "data-label": "Id" }, h("code", null, t.id)),
      h("td", { "data-label": "Created", class: "nowrap" }, SE.fmtTime(t.created)),
      h(
        "td",
        { "data-label": "Status" },
        h("span", { class: `badge ${revoked(t) ? "bad" : "ok"}` }, revoked(t) ? "revoked" : "active"),
        revoked(t) && isNum(t.revoked) ? h("div", { class: "small muted" }, SE.fmtTime(t.revoked)) : null,
      ),
      h("td", { "data-label": "Actions" }, revoke),
    );
  }

  async function loadTokens() {
    const tokens = await api("GET", "/api/tokens");
    const body = $("tokens-table").tBodies[0];
    body.replaceChildren(...tokens.map(tokenRow));
    if (!tokens.length) body.append(h("tr", null, h("td", { colspan: 6, class: "muted" }, "No API tokens.")));
  }

  $("token-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target;
    const body = { name: f.name.value.trim(), role: f.role.value };
    if (!body.name) return say("Give the token a name.", "error");
    try {
      const r = await api("POST", "/api/tokens", body);
      f.reset();
      roleOptions(f.role, "viewer");
      showTokenOnce(body.name, r.token);
      await loadTokens();
    } catch (err) {
      fail(err);
    }
  });

  function showTokenOnce(name, token) {
    const box = $("token-once");
    const input = h("input", { type: "text", readonly: true, value: token, id: "new-token", "aria-label": "New token" });
    const copy = h("button", { type: "button", class: "btn-small" }, "Copy");
    copy.addEventListener("click", async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(token);
      } catch {
        document.execCommand("copy"); // plain-http sites have no clipboard API
      }
      copy.textContent = "Copied";
    });
    const done = h("button", { type: "button", class: "btn-small", onclick: () => box.replaceChildren() || (box.hidden = true) }, "Done");
    box.replaceChildren(
      h("strong", null, `Token “${name}” created. Copy it now: it will not be shown again.`),
      h("div", { class: "pw-form" }, input, copy, done),
    );
    box.hidden = false;
    box.scrollIntoView({ block: "center" });
    input.select();
  }

  // ------------------------------------------------------------------------------------------ start
  roleOptions($("nu-role"), "viewer");
  roleOptions($("nt-role"), "viewer");
  try {
    await loadUsers();
    await loadTokens();
    content.hidden = false;
  } catch (err) {
    fail(err);
  }
})().catch((err) => {
  if (!(err instanceof SE.ApiError)) console.error(err);
});
