"""The pages: the chat at `/` and the article viewer at `/doc/<doc_id>`."""

from __future__ import annotations

import re

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
        upload_extensions=config.ingest.extensions,
        max_upload_bytes=config.server.max_upload_bytes,
        max_upload_mb=round(config.server.max_upload_bytes / 2**20, 1),
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
        category=shown_category(found.category, found.source),
    )


# One pinyin syllable (initial, then final); tone marks and v/ü are not expected in a slug.
_PINYIN_SYLLABLE = (
    r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
    r"(?:iang|iong|uang|ang|eng|ing|ong|ian|iao|uai|uan|van|ai|ei|ao|ou|an|en|in|un|vn"
    r"|ia|ie|iu|ua|uo|ui|ue|ve|er|a|o|e|i|u|v)"
)
_HAN = re.compile(r"[\u3400-\u9fff]")


def shown_category(category: str | None, source: str | None) -> str | None:
    """The category worth showing beside the source: None when it repeats the source,
    as the source's name itself or its pinyin slug (`jiangxiribao` for 江西日报)."""
    if not category or not category.strip():
        return None
    category = category.strip()
    if not source:
        return category
    if category == source.strip():
        return None
    slug = re.sub(r"[\s_-]+", "", category.lower())
    han = len(_HAN.findall(source))
    if han and slug.isascii() and re.fullmatch(f"(?:{_PINYIN_SYLLABLE}){{{han}}}", slug):
        return None
    return category
