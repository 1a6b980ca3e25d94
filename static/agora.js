// Progressive enhancement only: every page works without this file.
// Forms marked data-confirm ask for confirmation in KERN's dialog before a destructive action.
(function () {
  "use strict";
  var dialog = document.getElementById("confirm-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return;
  var text = document.getElementById("confirm-dialog-text");
  var pending = null;
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm || form.dataset.confirmed === "yes") return;
    event.preventDefault();
    pending = form;
    text.textContent = form.dataset.confirm;
    dialog.showModal();
  }, true);
  dialog.addEventListener("close", function () {
    var form = pending;
    pending = null;
    if (form && dialog.returnValue === "ok") {
      form.dataset.confirmed = "yes";
      form.requestSubmit();
    }
  });
})();

// Buttons marked data-copy copy their text to the clipboard and say so in the status next to them.
(function () {
  "use strict";
  if (!navigator.clipboard) return;
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var status = button.parentElement.querySelector("[data-copy-status]");
      navigator.clipboard.writeText(button.dataset.copy).then(function () {
        if (status) status.textContent = button.dataset.copied || "";
      });
    });
  });
})();
