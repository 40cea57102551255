// The JupyterHub launch form: open the lesson on the hub the reader names,
// through nbgitpuller, and remember that hub for the next lesson.
(function () {
  "use strict";
  var KEY = "labkit-book-jupyterhub";
  document.querySelectorAll("form.launch-hub").forEach(function (form) {
    var input = form.querySelector("input[name=hub]");
    var saved = null;
    try { saved = window.localStorage.getItem(KEY); } catch (e) { saved = null; }
    if (saved && !input.value) input.value = saved;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var hub = input.value.trim().replace(/\/+$/, "");
      if (!/^https?:\/\//.test(hub)) { input.setCustomValidity("a URL such as https://hub.example.org"); input.reportValidity(); return; }
      input.setCustomValidity("");
      try { window.localStorage.setItem(KEY, hub); } catch (e) { /* private mode: nothing to remember */ }
      window.location.href = hub + "/hub/user-redirect/git-pull?" + form.getAttribute("data-query");
    });
  });
})();
