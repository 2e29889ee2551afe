"""The 1C client-bank exchange format: the ``kl_to_1c.txt`` statements Russian banks give to 1C.

A text file of ``key=value`` lines: the line ``1CClientBankExchange``, a header
(``ВерсияФормата``, ``Кодировка``, ``Отправитель``, ``Получатель``, ``ДатаСоздания``,
``ВремяСоздания``, ``ДатаНачала``, ``ДатаКонца``, ``РасчСчет`` and ``Документ`` repeated),
one ``СекцияРасчСчет ... КонецРасчСчет`` block per account with ``НачальныйОстаток``,
``ВсегоПоступило``, ``ВсегоСписано``, ``КонечныйОстаток``, then one
``СекцияДокумент=<kind> ... КонецДокумента`` block per payment, and ``КонецФайла``.
Cyrillic keys, so the encoding (``Кодировка=Windows`` cp1251 or ``DOS`` cp866) matters from
the second line on (see `cbe_encoding`).

Versions: 1.02 is the long-standing one; 1.03 (1C:Бухгалтерия 3.0 writes it from 2016 on)
adds the payment's unique identifier ``Код`` (УИП, field 22 of a payment order), and the
payment-purpose code ``КодНазПлатежа`` (field 20) appears in later files; the structure is
the same, so both are read alike, and other versions (1.01, 1.04 exist in the wild) are
read with a warning. Keys outside the standard are kept in each document's `raw`.

Sources used:
- the standard itself, "Стандарт обмена с системами «Клиент банка»", 1C,
  http://v8.1c.ru/edi/edi_stnd/100/101.htm (the table of keys, with the 1.03 changes marked)
  and https://v8.1c.ru/tekhnologii/obmen-dannymi-i-integratsiya/standarty-i-formaty/standart-obmena-s-sistemami-klient-banka/formaty-obmena/
- github.com/Xini1/client-bank-exchange (Java reader; its 1.03 sample written by
  1C:Бухгалтерия 3.0 shows the key order, ``Плательщик=ИНН ... name`` next to
  ``Плательщик1``, and ``НазначениеПлатежа`` together with ``НазначениеПлатежа1``)
- github.com/kilylabs/client-bank-exchange-php (the document key list, 1.02/1.03)
- packagist.org/packages/maximal/1c-client-bank-exchange (a PHP parser's handling of
  encodings)

This module is the public face; the work is in `cbe_reader` (with `cbe_encoding`),
`cbe_writer` and `cbe_model`, each small enough to read at once.
"""

# ruff: noqa: RUF002

from __future__ import annotations

from threadline.services.payments.cbe_encoding import LABEL_CODECS
from threadline.services.payments.cbe_model import (
    AccountSection,
    Direction,
    Statement,
    StatementDocument,
    StatementError,
)
from threadline.services.payments.cbe_reader import (
    KNOWN_VERSIONS,
    MAX_BYTES,
    MAX_DOCUMENTS,
    read_statement,
)
from threadline.services.payments.cbe_writer import (
    PURPOSE_WIDTH,
    AccountSpec,
    DocumentSpec,
    split_text,
    write_statement,
)

__all__ = [
    "KNOWN_VERSIONS",
    "LABEL_CODECS",
    "MAX_BYTES",
    "MAX_DOCUMENTS",
    "PURPOSE_WIDTH",
    "AccountSection",
    "AccountSpec",
    "Direction",
    "DocumentSpec",
    "Statement",
    "StatementDocument",
    "StatementError",
    "read_statement",
    "split_text",
    "write_statement",
]
