"""Documents: templates, rendering to HTML and PDF, issuing and numbering."""
