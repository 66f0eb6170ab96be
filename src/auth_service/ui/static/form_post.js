// OAuth 2.0 Form Post Response Mode: submit the response form as soon as the page loads.
// Served from our origin (the pages' CSP allows no inline script).
document.getElementById("form-post").submit();
