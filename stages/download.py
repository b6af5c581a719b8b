"""Fetch the data file `data.download` names (mirror first, then its URL), its SHA-256 checked; else a note."""

from ckd.stages import write_json
from ckd.stages.download import download
from stages._entry import parser, run


def main(argv=None) -> None:
    p = parser("download", __doc__)
    p.add_argument("--out", required=True, help="the record of what was fetched and from where (JSON)")

    def body(args, params):
        record = download(params.data)
        write_json(args.out, record)
        return {"fetched": record["from"] not in (None, "present")}

    run("download", p, body, argv)


if __name__ == "__main__":
    main()
