enum CofferHTTPPlaceholder {}
