/* Starts Swagger UI on /schema from this server's own copy (no CDN); the spec's address is on the
 * page's #swagger-ui element. No validator badge: it would call a server on the internet. */
(function () {
  "use strict";
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.spec,
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
