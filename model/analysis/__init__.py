"""Step 3, analysis: takes a solved model and gives result tables (pandas), the only
thing later steps read.

results (all tables of a run: costs, flows, prices, shortfall, summary), margins
(reference margins along the chain), tracing (where each product's content was mined
and separated), compare (a scenario against a reference run: changes, what a policy
buys, watched prices), who_pays (money by country; transfers by who pays and who
receives), calibration (terms derived from observed outputs), sameness (whether two
runs give the same answer).
"""
