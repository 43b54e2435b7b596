// The API docs page's own script (served by us, like Swagger UI itself: the page's CSP allows
// scripts from our origin only). Requests made from the page with the console's session cookie
// carry the session's CSRF token; with a token from "Authorize", the token is enough.
window.addEventListener("load", function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    requestInterceptor: function (request) {
      if (csrf) {
        request.headers["X-CSRF-Token"] = csrf;
      }
      return request;
    },
  });
});
