"""The pages: the chat at `/` and the article viewer at `/doc/<doc_id>`."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template

from qa.web.documents import document_blocks, safe_url

pages = Blueprint("pages", __name__)

# Everything the pages load comes from this app: no CDN, no inline script, no
# outside connection (the machines it runs on are offline, and corpus text is
# untrusted HTML that must stay inert).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@pages.after_app_request
def security_headers(response: Response) -> Response:
    """Every response: no sniffing, no framing, and the page policy above."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response


@pages.get("/")
def chat() -> str:
    """The chat page; it talks to the JSON API with fetch."""
    config = current_app.config["QA"]
    return render_template(
        "chat.html",
        default_top_k=config.retrieval.top_k,
        max_question_chars=config.retrieval.max_question_chars,
    )


@pages.get("/doc/<doc_id>")
def document(doc_id: str) -> str:
    """The whole article, each paragraph with id="p<n>" so a citation can link to it."""
    # Looked up in the store only (a missing id raises DocumentNotFoundError -> 404 page).
    with current_app.extensions["qa_retriever"].engine.snapshot() as snapshot:
        found = snapshot.document(doc_id)
    return render_template(
        "doc.html",
        document=found,
        blocks=document_blocks(found),
        original_url=safe_url(found.url),
    )
