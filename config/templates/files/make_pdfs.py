"""Write the directions attachments used by the interview-invitation template.

Run `python3 make_pdfs.py` in this directory to (re)create
Anfahrt-ACME-Muenchen.pdf and Acces-ACME-Paris.pdf: one-page A4 PDFs written
by hand (no dependencies), standard Helvetica with WinAnsiEncoding, so the
text must stay within Latin-1. The offices are fictional: replace the text
with your own address and directions before use.
"""
from pathlib import Path

DOCS = {
    "Anfahrt-ACME-Muenchen.pdf": ("Anfahrt zur ACME Deutschland GmbH", [
        ("B", "ACME Deutschland GmbH"), ("", "Beispielstraße 1"), ("", "80331 München"), ("", ""),
        ("B", "Mit öffentlichen Verkehrsmitteln"),
        ("", "S-Bahn (alle Linien der Stammstrecke) oder U-Bahn U3/U6 bis Marienplatz,"),
        ("", "von dort sind es etwa 5 Minuten zu Fuß."), ("", ""),
        ("B", "Mit dem Auto"),
        ("", "Die Innenstadt liegt in der Umweltzone (grüne Plakette erforderlich). Eigene"),
        ("", "Besucherparkplätze haben wir nicht; bitte nutzen Sie ein öffentliches Parkhaus"),
        ("", "in der Nähe."), ("", ""),
        ("B", "Vor Ort"),
        ("", "Bitte melden Sie sich am Empfang im Erdgeschoss."),
    ]),
    "Acces-ACME-Paris.pdf": ("Accès à ACME France SAS", [
        ("B", "ACME France SAS"), ("", "1 rue de l'Exemple"), ("", "75002 Paris"), ("", ""),
        ("B", "En transports en commun"),
        ("", "Métro : ligne 3, station Bourse ou Sentier, puis environ 5 minutes à pied."),
        ("", "RER A, B ou D : station Châtelet-Les Halles, puis environ 10 minutes à pied."), ("", ""),
        ("B", "En voiture"),
        ("", "Le stationnement est très limité dans le quartier : nous vous recommandons"),
        ("", "les transports en commun ou, à défaut, un parking public à proximité."), ("", ""),
        ("B", "Sur place"),
        ("", "Merci de vous présenter à l'accueil, au rez-de-chaussée."),
    ]),
}


def pdf_string(s):
    return b"(" + s.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def make_pdf(title, lines):
    ops = [b"BT /F2 16 Tf 60 770 Td " + pdf_string(title) + b" Tj ET"]
    y = 735
    for style, text in lines:
        if text:
            font = b"/F2 11 Tf" if style == "B" else b"/F1 11 Tf"
            ops.append(b"BT " + font + b" 60 %d Td " % y + pdf_string(text) + b" Tj ET")
        y -= 16
    content = b"\n".join(ops) + b"\n"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Title " + pdf_string(title) + b" /Producer (make_pdfs.py) >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 7 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    for name, (title, lines) in DOCS.items():
        (here / name).write_bytes(make_pdf(title, lines))
        print("wrote", here / name)
