from django.urls import path

from apps.clinical.views import admin, queues, review, studies

app_name = "clinical"

urlpatterns = [
    path("queue/", queues.review_queue, name="review_queue"),
    path("queue/counts/", queues.queue_counts, name="queue_counts"),
    path("queue/next/", queues.next_case, name="next_case"),
    path("escalations/", queues.escalations, name="escalations"),
    path("mine/", queues.my_cases, name="my_cases"),
    path("studies/", studies.study_list, name="study_list"),
    path("cases/<uuid:public_id>/", review.review, name="review"),
    path("cases/<uuid:public_id>/image.png", review.review_image, name="review_image"),
    path("cases/<uuid:public_id>/claim/", review.claim, name="claim"),
    path("cases/<uuid:public_id>/release/", review.release, name="release"),
    path("cases/<uuid:public_id>/recompute/", review.recompute, name="recompute"),
    path("cases/<uuid:public_id>/decide/", review.decide, name="decide"),
    path("cases/<uuid:public_id>/take-over/", review.take_over, name="take_over"),
    path("thresholds/", admin.thresholds, name="thresholds"),
    path("audit/", admin.audit, name="audit"),
    path("sites/<str:key>/<slug:action>/", admin.site_action, name="site_action"),
]
