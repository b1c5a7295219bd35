"""Write the binary fixtures of tests/fixtures/ingest/ (PDFs, .docx, .xlsx).

The files are committed; run this only to change them. It needs fpdf2 and a CJK font, which
the project does not depend on:

    python -m pip install --target /tmp/fixture-tools 'fpdf2==2.8.9'
    PYTHONPATH=/tmp/fixture-tools .venv/bin/python scripts/make_ingest_fixtures.py

(Debian's fonts-noto-cjk provides the font; CI installs it for the browser tests.) The texts
are invented news, written for these tests.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import docx
from fpdf import FPDF

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ingest"
FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
SIMPLIFIED_CHINESE = 2  # index of Noto Sans CJK SC in the collection
FIXED_DATE = dt.datetime(2024, 5, 10, 8, 0, tzinfo=dt.UTC)

PDF_PARAGRAPHS = [
    "杭州市统计局近日发布数据，一季度全市规模以上工业增加值同比增长百分之七点二，"
    "其中数字经济核心产业制造业增加值增长百分之十一点五，继续发挥引领作用。",
    "从行业看，集成电路、智能光伏和新能源汽车三个行业增速均超过百分之十五。"
    "萧山区一家新能源汽车零部件企业负责人介绍，今年以来企业订单排到了八月，"
    "两条新生产线已在四月投产。",
    "投资方面，一季度全市制造业投资增长百分之九点八，高新技术产业投资增长百分之十三点一。"
    "统计部门分析认为，工业技术改造投资的持续增加，为全年工业稳定增长打下了基础。",
    "消费市场同样保持回暖态势。一季度全市社会消费品零售总额增长百分之五点六，"
    "限额以上单位通过网络实现的商品零售额增长百分之八点三。",
]


def make_text_pdf(path: Path) -> None:
    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title("杭州一季度工业经济运行情况")
    pdf.set_author("周航")
    pdf.add_font("noto", fname=str(FONT), collection_font_number=SIMPLIFIED_CHINESE)
    pdf.set_margins(25, 25, 25)
    for page, paragraphs in enumerate((PDF_PARAGRAPHS[:3], PDF_PARAGRAPHS[3:]), start=1):
        pdf.add_page()
        pdf.set_font("noto", size=9)
        pdf.cell(0, 6, f"杭州日报 2024年5月10日 第{page + 2}版 经济新闻", align="R")
        pdf.ln(10)
        if page == 1:
            pdf.set_font("noto", size=18)
            pdf.multi_cell(0, 12, "杭州一季度工业经济稳中有进", align="C",
                           new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("noto", size=10)
            pdf.multi_cell(0, 8, "2024年5月10日 来源：杭州日报", align="C",
                           new_x="LMARGIN", new_y="NEXT")
            pdf.multi_cell(0, 8, "记者 周航", align="C", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
        pdf.set_font("noto", size=12)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 8, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        pdf.set_auto_page_break(False)
        pdf.set_y(-20)
        pdf.set_font("noto", size=9)
        pdf.cell(0, 8, f"- {page} -", align="C")
        pdf.set_auto_page_break(True, margin=20)
    pdf.output(str(path))


def make_scanned_pdf(path: Path) -> None:
    """A page of drawn shapes only, like a scan: no text layer at all."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    pdf.add_page()
    pdf.set_fill_color(200, 200, 200)
    for row in range(12):
        pdf.rect(15, 20 + row * 12, 100 + (row * 7) % 18, 5, style="F")
    pdf.output(str(path))


def make_docx(path: Path) -> None:
    document = docx.Document()
    properties = document.core_properties
    properties.title = "宁波舟山港一季度生产情况通报"
    properties.author = "宁波市港航管理中心"
    properties.created = properties.modified = FIXED_DATE.replace(tzinfo=None)
    document.add_heading("宁波舟山港一季度货物吞吐量保持增长", level=0)
    document.add_paragraph("2024年4月20日 来源：宁波晚报")
    document.add_paragraph("记者 郑佳")
    document.add_paragraph(
        "宁波舟山港一季度完成货物吞吐量三亿五千万吨，同比增长百分之四点六；"
        "集装箱吞吐量九百四十万标准箱，同比增长百分之九点一。"
    )
    document.add_heading("航线网络继续加密", level=1)
    document.add_paragraph(
        "一季度新开通国际航线六条，其中"
        "三条通往东南亚，两条通往中东，一条通往南美西岸。"
    )
    document.add_paragraph("目前港口航线总数达到三百零五条。", style="List Bullet")
    document.add_heading("海铁联运量创同期新高", level=1)
    document.add_paragraph(
        "海铁联运完成四十一万标准箱，同比增长百分之十二，创历史同期新高。"
        "业内人士认为，内陆腹地货源的稳定增长是主要原因。"
    )
    table = document.add_table(rows=2, cols=2)
    for row, cells in enumerate((("指标", "增速"), ("集装箱吞吐量", "百分之九点一"))):
        for column, text in enumerate(cells):
            table.cell(row, column).text = text
    document.save(str(path))


def make_xlsx(path: Path) -> None:
    """Only its type matters to the loader: a zip named .xlsx."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("[Content_Types].xml", (2024, 5, 10, 0, 0, 0)), "<Types/>")


def main() -> None:
    make_text_pdf(FIXTURES / "hangzhou_report.pdf")
    make_scanned_pdf(FIXTURES / "scanned_notice.pdf")
    make_docx(FIXTURES / "ningbo_port.docx")
    make_xlsx(FIXTURES / "statistics.xlsx")


if __name__ == "__main__":
    main()
