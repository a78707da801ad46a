from teleexpertise.cases.models import Case


def test_case_reaches_every_state(cast):
    for state in Case.State.values:
        assert cast.case_in(state).state == state
