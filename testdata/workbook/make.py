#!/usr/bin/env python3
"""Writes the workbook fixtures of this folder with LibreOffice (see NOTES.md).

Each workbook is written here as a flat OpenDocument spreadsheet (.fods: plain XML, typed
cells: text, numbers, dates formatted dd/mm/aaaa, a formula), then LibreOffice Calc converts
it to .xlsx (and .ods):  python3 testdata/workbook/make.py  (needs soffice on the PATH).
"""
import os
import subprocess
import sys
import tempfile
from xml.sax.saxutils import escape

HERE = os.path.dirname(os.path.abspath(__file__))

S = lambda v: ("s", v)  # text
N = lambda v: ("n", v)  # number
D = lambda v: ("d", v)  # date, YYYY-MM-DD
F = lambda v: ("f", v)  # formula (OpenFormula), computed by LibreOffice
E = None  # empty

ASSINATURAS = [
    [S("id"), S("Cliente"), S("Contrato"), S("Produto"), S("Quantidade"), S("Valor unitário"),
     S("Desconto"), S("Moeda"), S("Meses"), S("Início"), S("Término"), S("Vendido em"), S("Revisa")],
    [S("s1"), S("c1"), S("k1"), S("p1"), N(1), N(100.5), E, S("BRL"), N(1), D("2024-01-01"), D("2024-03-31"), D("2023-12-15"), E],
    [S("s2"), S("c1"), S("k1"), S("p2"), N(2), N(250), E, S("BRL"), N(1), D("2024-04-01"), E, D("2024-03-20"), S("s1")],
    [S("s3"), S("c2"), S("k2"), S("p1"), N(1), N(99.9), N(10), S("BRL"), N(1), D("2024-02-15"), D("2024-06-30"), E, E],
    [S("s4"), S("c3"), S("k3"), S("p2"), N(3), N(1234.56), E, S("BRL"), N(12), D("2024-03-01"), E, E, E],
    [S("s5"), S("c3"), S("k3"), S("p3"), N(1), N(49.9), N(2.5), S("BRL"), N(1), D("2024-05-01"), D("2024-09-30"), E, E],
    [S("s6"), S("c2"), S("k2"), S("p3"), N(0.5), N(0.1), E, S("BRL"), N(1), S("2024-07-01"), E, E, E],
]
CLIENTES = [
    [S("Cliente"), S("Nome"), S("Cadastro"), S("Segmento"), S("País"), S("Canal")],
    [S("c1"), S("Ana Ltda"), D("2023-12-10"), S("SMB"), S("BR"), S("ads")],
    [S("c2"), S("Beto SA"), D("2024-02-01"), S("Enterprise"), S("BR"), S("partner")],
    [S("c3"), S("Três, Cia"), D("2024-02-20"), S("SMB"), S("PT"), S("ads")],
]
PRODUTOS = [
    [S("Produto"), S("Nome"), S("Família"), S("Nível"), S("Tipo"), S("Preço de lista"),
     S("Prazo preço meses"), S("Moeda")],
    [S("p1"), S("Básico"), S("crm"), N(1), S("plan"), N(1200), N(12), S("BRL")],
    [S("p2"), S("Pro"), S("crm"), N(2), S("plan"), N(3000), N(12), S("BRL")],
    [S("p3"), S("Suporte"), S("suporte"), E, S("addon"), N(49.9), N(1), S("BRL")],
]
# One sheet, named as LibreOffice names a new one: the subscriptions. Its table starts on row 3
# (rows 1 and 2 are empty), has an extra column with a note over two lines, and an empty row.
UMA_ABA = [[E], [E]] + [row + [S("observação")] if i == 0 else row + [E] for i, row in enumerate(ASSINATURAS)]
UMA_ABA[4][-1] = S("renovou\nem março")
UMA_ABA.insert(6, [E])
# A book with bad cells: a price that is text, a day written dd/mm/yyyy as text (after a
# cell of two lines), and a customer's name that is a formula's error.
RUIM_ASSINATURAS = [row[:] + [E] for row in ASSINATURAS[:4]]
RUIM_ASSINATURAS[0][-1] = S("observação")
RUIM_ASSINATURAS[2][5] = S("abc")
RUIM_ASSINATURAS[3][-1] = S("linha um\nlinha dois")
RUIM_ASSINATURAS.append([S("s7"), S("c2"), E, S("p1"), N(1), N(10), E, E, E, S("01/02/2024"), E, E, E, E])
RUIM_CLIENTES = [row[:] for row in CLIENTES]
RUIM_CLIENTES[2][1] = F("of:=NA()")

# A stray value far from the table (row 1048576, column XFD): its used range is too large.
LONGE = [[S("id"), S("Cliente")], [S("s1"), S("c1")]]
LONGE_STRAY = '<table:table-row table:number-rows-repeated="1048573"><table:table-cell/></table:table-row>' \
    '<table:table-row><table:table-cell table:number-columns-repeated="16383"/>' \
    '<table:table-cell office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row>'

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"
 xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0"
 xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2"
 office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.spreadsheet">
 <office:automatic-styles>
  <number:date-style style:name="N1">
   <number:day number:style="long"/><number:text>/</number:text>
   <number:month number:style="long"/><number:text>/</number:text>
   <number:year number:style="long"/>
  </number:date-style>
  <style:style style:name="data" style:family="table-cell" style:parent-style-name="Default" style:data-style-name="N1"/>
 </office:automatic-styles>
 <office:body><office:spreadsheet>
"""
TAIL = " </office:spreadsheet></office:body>\n</office:document>\n"


def cell(c):
    if c is None:
        return "<table:table-cell/>"
    kind, v = c
    if kind == "s":
        paras = "".join(f"<text:p>{escape(p)}</text:p>" for p in v.split("\n"))
        return f'<table:table-cell office:value-type="string">{paras}</table:table-cell>'
    if kind == "n":
        return f'<table:table-cell office:value-type="float" office:value="{v}"><text:p>{v}</text:p></table:table-cell>'
    if kind == "d":
        return (f'<table:table-cell table:style-name="data" office:value-type="date" '
                f'office:date-value="{v}"><text:p>{v}</text:p></table:table-cell>')
    return f'<table:table-cell table:formula="{escape(v)}"/>'


def fods(sheets):
    out = [HEAD]
    for name, rows, *raw in sheets:
        out.append(f'  <table:table table:name="{escape(name)}">\n')
        for row in rows:
            out.append("   <table:table-row>" + "".join(cell(c) for c in row) + "</table:table-row>\n")
        out.extend(raw)
        out.append("  </table:table>\n")
    out.append(TAIL)
    return "".join(out)


WORKBOOKS = {
    "planilha": ([("assinaturas", ASSINATURAS), ("clientes", CLIENTES), ("produtos", PRODUTOS)], ["xlsx", "ods"]),
    "uma-aba": ([("Planilha1", UMA_ABA)], ["xlsx"]),
    "ruim": ([("assinaturas", RUIM_ASSINATURAS), ("clientes", RUIM_CLIENTES)], ["xlsx"]),
    "so-clientes": ([("clientes", CLIENTES), ("Notas", [[S("nada")]])], ["xlsx"]),
    "longe": ([("assinaturas", LONGE, LONGE_STRAY)], ["xlsx"]),
}


def main():
    with tempfile.TemporaryDirectory() as profile:
        for name, (sheets, formats) in WORKBOOKS.items():
            src = os.path.join(HERE, name + ".fods")
            with open(src, "w", encoding="utf-8") as f:
                f.write(fods(sheets))
            for fmt in formats:
                subprocess.run(
                    ["soffice", f"-env:UserInstallation=file://{profile}", "--headless",
                     "--convert-to", fmt, "--outdir", HERE, src],
                    check=True, stdout=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
