# Inside Weir's repository the SDK is guest-sdk/python; a project made by `weir transform new`
# carries its own copy (weir.py) instead.
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "guest-sdk" / "python"))
