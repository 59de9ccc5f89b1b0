"""Measure where the reuse finder's novelty threshold should sit (run by hand).

    .venv/bin/python bench/reuse_threshold.py

Encodes approved-style claims, a rewording of each (the same claim: must NOT be
flagged as new) and new claims in the same therapy areas (must be flagged),
with the configured embedding model, and prints the similarity distributions
and how each candidate threshold separates them. REUSE_NOVELTY_THRESHOLD (0.60)
was chosen from this output.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contentapp.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from content_modules.affinity.embeddings import encode, model_info  # noqa: E402

# (approved claim, a rewording of the same claim)
PAIRS = [
    (
        "CardioZen reduced major adverse cardiac events by 24% versus placebo.",
        "Compared with placebo, CardioZen cut major cardiac events by 24 percent.",
    ),
    (
        "CardioZen lowered LDL cholesterol by 45% at 12 weeks.",
        "At week 12, LDL-C fell by 45% in patients on CardioZen.",
    ),
    ("Once-daily dosing with or without food.", "Take one tablet a day, with or without meals."),
    (
        "The most common side effects were headache and nausea.",
        "Headache and nausea were the adverse events reported most often.",
    ),
    (
        "NeuroLift improved cognitive scores within 8 weeks.",
        "Patients on NeuroLift showed better cognition scores after eight weeks.",
    ),
    (
        "No dose adjustment is needed in mild renal impairment.",
        "Patients with mild kidney impairment do not need a dose change.",
    ),
    ("CardioZen is contraindicated in pregnancy.", "Do not use CardioZen in pregnant women."),
    (
        "The patient support programme offers free nurse visits at home.",
        "Our support programme provides free home visits from a nurse.",
    ),
    (
        "CardioZen is now reimbursed for all eligible NHS patients.",
        "All eligible NHS patients can now get CardioZen reimbursed.",
    ),
    (
        "NeuroLift reduced migraine days by 4.2 per month versus 1.9 with placebo.",
        "Monthly migraine days fell by 4.2 with NeuroLift compared with 1.9 on placebo.",
    ),
    (
        "CardioZen inhibits PCSK9 to increase LDL receptor recycling.",
        "By blocking PCSK9, CardioZen lets more LDL receptors recycle to the cell surface.",
    ),
    (
        "93% of patients stayed on treatment at one year.",
        "After 12 months, 93 percent of patients were still on therapy.",
    ),
]
# New claims: same brands and therapy areas, content no approved claim makes.
NEW_CLAIMS = [
    "CardioZen reduced all-cause mortality by 15% in heart failure patients.",
    "CardioZen can be given as a monthly injection at home.",
    "NeuroLift is the first treatment approved for cluster headache in children.",
    "Switching from statins to CardioZen takes two clinic visits.",
    "CardioZen showed no interaction with warfarin in a phase 1 study.",
    "Liver enzymes should be checked every three months during treatment.",
    "NeuroLift improved sleep quality scores in patients with insomnia.",
    "CardioZen patients reported fewer muscle aches than statin patients.",
]


def main() -> None:
    print("model:", *model_info())
    approved = encode([a for a, _ in PAIRS])
    reworded = encode([b for _, b in PAIRS])
    new = encode(NEW_CLAIMS)
    own = np.einsum("ij,ij->i", approved, reworded)
    best_rewording = (reworded @ approved.T).argmax(1)
    new_best = (new @ approved.T).max(1)
    print(f"rewordings vs their own claim: {np.round(np.sort(own), 3)}")
    own_best = bool((best_rewording == np.arange(len(PAIRS))).all())
    print(f"every rewording's best match is its own claim: {own_best}")
    print(f"new claims vs closest approved claim: {np.round(np.sort(new_best), 3)}")
    print("threshold  rewordings-known  new-claims-flagged")
    for threshold in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75):
        known = int((own >= threshold).sum())
        flagged = int((new_best < threshold).sum())
        print(f"{threshold:9.2f}  {known:>9}/{len(PAIRS)}  {flagged:>13}/{len(NEW_CLAIMS)}")


if __name__ == "__main__":
    main()
