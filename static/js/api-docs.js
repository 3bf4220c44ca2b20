// Starts Swagger UI on /api/docs/ (a static file: the site's CSP allows no inline script).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    validatorUrl: null, // no call to an outside validator
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
