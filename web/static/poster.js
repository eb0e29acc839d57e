// The poster's print button (a module, so the page needs no inline script).
document.getElementById("print-button")?.addEventListener("click", () => window.print());
