"""Addresses of a sweep's pages in the MLflow UI.

The MLflow 3 UI has two workflows, GenAI (traces, evaluations) and model training (runs); a browser
that has not chosen one starts in GenAI, where an experiment opens on a traces overview and a run
is shown as an "evaluation". MLflow 3.17's UI picks the workflow from the address
(``?workflowType=machine_learning``) or the browser's last choice, not from the experiment's
``mlflow.experimentKind`` tag (which asymtune sets all the same, for MLflow's other clients), so
every address asymtune gives carries the workflow: the experiment opens on its training runs.
"""

from __future__ import annotations

WORKFLOW_QUERY = "workflowType=machine_learning"


def experiment_url(server: str, experiment_id: str) -> str:
    """The experiment's runs table (parent runs, their trials nested under them).

    >>> experiment_url("http://127.0.0.1:5000/", "1")
    'http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning'
    """
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?{WORKFLOW_QUERY}"


def run_url(server: str, experiment_id: str, run_id: str) -> str:
    """A run's page (its metrics, parameters, dataset, source and description).

    >>> run_url("http://127.0.0.1:5000", "1", "abc")
    'http://127.0.0.1:5000/#/experiments/1/runs/abc?workflowType=machine_learning'
    """
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{WORKFLOW_QUERY}"
