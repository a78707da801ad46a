"""The demo data set: French and entirely fictitious people, places and cases (used by `manage.py seed_demo`).

Names, identifiers, addresses and phone numbers are invented; phone numbers use the 01 99 00 range that the
French regulator reserves for fiction. Each case is a script of workflow steps played through the services, so
the audit trail, threads and notifications are those a real use would leave.

Steps of a case script (the actor is implied: the requester or the case's current expert, unless named):
    ("claim", pro)            a network member takes the pooled case
    ("assign", pro)           the network's dispatcher gives the pooled case to a member
    ("accept", days)          the expert accepts; the answer is due `days` later
    ("ask", text)             the expert requests information; ("reply", text) the requester answers
    ("report", fields)        the expert writes and signs the report; ("draft_report", fields) only saves it
    ("amend", fields)         a signed correction (new version) of the report
    ("decline", reason), ("transfer", pro, note), ("withdraw", reason)
    ("close",) or ("close", survey)   the requester closes with a closing survey (default: CLOSING_SURVEYS in turn)
A closed case older than the follow-up delay is asked its follow-up; `follow_up` on its spec is the answer.
    ("msg", "requester" | "expert", text)   a message in the case thread
"""

import unicodedata
from dataclasses import dataclass

SEED = 2026  # random.Random seed: the same data, times and identifiers on every fresh database
EMAIL_DOMAIN = "demo.teleexpertise.fr"
ADMIN_EMAIL = f"admin@{EMAIL_DOMAIN}"
PASSWORD = "Demo-Teleexpertise-2026"  # noqa: S105 - the public password of the demo accounts, printed on purpose


@dataclass(frozen=True)
class Org:
    key: str
    name: str
    city: str
    postcode: str
    finess_body: str  # 8 digits; the Luhn check digit is added when seeding ("" = no FINESS, e.g. a private office)
    mssante: str  # the organisation's MSSanté domain


@dataclass(frozen=True)
class Pro:
    key: str
    first: str
    last: str
    profession: str  # TRE_G15
    specialty: str  # TRE_R38 ("" for non-doctors)
    org: str
    role: str  # shown in the table of demo accounts
    advanced_practice: bool = False
    adeli: bool = False  # nurses keep an ADELI number; everyone else has an RPPS number


@dataclass(frozen=True)
class Net:
    key: str
    name: str
    specialty: str
    org: str
    description: str
    members: tuple[str, ...]
    dispatcher: str
    form: str = ""  # the id of a shipped request form (cases/data/request_forms/<id>.json) the network uses


@dataclass(frozen=True)
class Pat:
    key: str
    sex: str  # NIR sex digit: "1" male, "2" female
    birth_name: str
    first_names: str
    birth_date: str  # ISO date
    place: str  # INSEE code of the birth place (99xxx: born abroad); also the NIR's place digits
    treating: str  # a professional's key, or the name of a treating doctor outside the directory, or ""
    used_name: str = ""
    status: str = "qualified"


@dataclass(frozen=True)
class CaseSpec:
    requester: str
    patient: str
    to: str  # "net:derm", "net:cardio", a professional's key, or "" (draft without recipient)
    question: str
    context: str
    days_ago: float  # when the request was written
    steps: tuple = ()
    priority: str = "routine"
    mode: str = "asynchronous"
    consent: tuple | None = ("given",)  # ("given",), ("representative", name), ("impossible", reason, detail), None
    draft: bool = False
    follow_up: dict | None = None  # the requester's answer to the follow-up (advice_followed, seen, outcome)


# The closing surveys of ("close",) steps, in turn: mostly useful, most often a visit avoided (as in the field).
CLOSING_SURVEYS = (
    {"usefulness": "yes", "avoided": ["visit"]},
    {"usefulness": "yes", "avoided": ["visit", "emergency"]},
    {"usefulness": "partly", "avoided": ["none"], "technical_incidents": "Photo refusée au premier envoi (format)."},
    {"usefulness": "yes", "avoided": ["hospitalisation"]},
    {"usefulness": "yes", "avoided": ["none"]},
)


def report(answer: str, conclusion: str, **fields) -> tuple:
    """A report step; `consult_in_days` sets the consultation date that many days after the report."""
    return ("report", {"answer": answer, "conclusion": conclusion, **fields})


def slug(text: str) -> str:
    """'Élodie' -> 'elodie': the ASCII form used in e-mail addresses."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain.lower().replace(" ", "-").replace("'", "")


def account_email(pro: Pro) -> str:
    return f"{slug(pro.first)}.{slug(pro.last)}@{EMAIL_DOMAIN}"


ORGANISATIONS = (
    Org("msp", "Maison de santé pluriprofessionnelle des Tilleuls", "Montgeron", "91230", "91000412",
        "msp-tilleuls.mssante.fr"),
    Org("cds", "Centre de santé de la Gare", "Vigneux-sur-Seine", "91270", "91000873", "cds-gare-vigneux.mssante.fr"),
    Org("pharma", "Pharmacie du Centre", "Draveil", "91210", "91001529", "pharmacie-centre-draveil.mssante.fr"),
    Org("kine", "Cabinet de kinésithérapie du Parc", "Yerres", "91330", "", "kine-parc-yerres.mssante.fr"),
    Org("sf", "Cabinet de sages-femmes des Lilas", "Brunoy", "91800", "", "sages-femmes-lilas.mssante.fr"),
    Org("chdr", "Centre hospitalier des Deux Rives", "Évry-Courcouronnes", "91000", "91080264",
        "ch-deux-rives.mssante.fr"),
    Org("hu", "Hôpital universitaire des Coteaux-de-Marne", "Créteil", "94000", "94080137",
        "hu-coteaux-marne.mssante.fr"),
)

PROFESSIONALS = (
    Pro("mercier", "Julien", "Mercier", "10", "SM54", "msp", "Médecin généraliste (requérant)"),
    Pro("bernard", "Aurélie", "Bernard", "10", "SM54", "cds", "Médecin généraliste (requérante)"),
    Pro("lambert", "Sophie", "Lambert", "60", "", "msp", "Infirmière en pratique avancée (requérante)",
        advanced_practice=True, adeli=True),
    Pro("garnier", "Thomas", "Garnier", "21", "", "pharma", "Pharmacien d'officine (requérant)"),
    Pro("roux", "Camille", "Roux", "70", "", "kine", "Masseur-kinésithérapeute (requérant)"),
    Pro("fabre", "Élodie", "Fabre", "50", "", "sf", "Sage-femme (requérante et requise)"),
    Pro("vasseur", "Hélène", "Vasseur", "10", "SM41", "chdr", "Pneumologue (requérante et requise)"),
    Pro("benali", "Karim", "Benali", "10", "SM21", "chdr", "Hématologue (requis)"),
    Pro("leclerc", "Antoine", "Leclerc", "10", "SM04", "hu", "Cardiologue, réseau Cardiologie"),
    Pro("haddad", "Nadia", "Haddad", "10", "SM04", "hu", "Cardiologue, réseau Cardiologie"),
    Pro("marchand", "Claire", "Marchand", "10", "SM15", "hu", "Dermatologue, réseau Dermatologie"),
    Pro("morel", "Vincent", "Morel", "10", "SM15", "hu", "Dermatologue, réseau Dermatologie"),
    Pro("perrin", "Isabelle", "Perrin", "10", "SM30", "chdr", "Néphrologue (requise)"),
    Pro("girard", "Lucas", "Girard", "10", "SM38", "chdr", "Ophtalmologue (requis)"),
    Pro("rousseau", "Mathilde", "Rousseau", "10", "SM34", "chdr", "ORL (requise)"),
    Pro("fontaine", "Nathalie", "Fontaine", "60", "", "hu", "Infirmière coordinatrice, régulatrice Dermatologie",
        adeli=True),
    Pro("chevalier", "Olivier", "Chevalier", "60", "", "hu", "Infirmier coordinateur, régulateur Cardiologie",
        adeli=True),
)

NETWORKS = (
    Net("derm", "Dermatologie — avis à distance", "SM15", "hu",
        "File partagée du service de dermatologie : lésions pigmentées, tumeurs cutanées, plaies chroniques, "
        "dermatoses inflammatoires. Joindre des photos nettes avec une réglette (et la dermoscopie si possible).",
        ("marchand", "morel"), "fontaine", form="dermatologie"),
    Net("cardio", "Cardiologie — avis à distance", "SM04", "hu",
        "File partagée du service de cardiologie : ECG, Holter, insuffisance cardiaque, anticoagulation. "
        "Une douleur thoracique aiguë relève du 15, pas de la téléexpertise.",
        ("leclerc", "haddad"), "chevalier", form="cardiologie"),
)

PATIENTS = (
    Pat("leroy", "2", "LEROY", "Christine Anne", "1966-03-14", "91421", "mercier"),
    Pat("moreau", "1", "MOREAU", "Jean Pierre", "1948-11-02", "75112", "mercier"),
    Pat("petit", "2", "PETIT", "Sandrine Marie", "1979-06-25", "91228", "bernard", used_name="GIRAUD"),
    Pat("blanc", "1", "BLANC", "Lucas Martin", "1992-01-08", "69123", "bernard", status="validated"),
    Pat("roussel", "1", "ROUSSEL", "Gérard André", "1941-07-19", "59350", "mercier"),
    Pat("nicolas", "2", "NICOLAS", "Emma Louise", "1996-09-30", "91421", "bernard"),
    Pat("santoni", "1", "SANTONI", "Pierre Dominique", "1958-04-11", "2A004", "mercier"),
    Pat("paoli", "2", "PAOLI", "Antoinette Marie", "1952-12-03", "2B033", "bernard", used_name="CASANOVA"),
    Pat("bensalem", "1", "BENSALEM", "Yacine", "1985-05-21", "99350", "bernard", status="validated"),
    Pat("faure", "2", "FAURE", "Léa Camille", "2018-02-14", "91228", "mercier"),
    Pat("gauthier", "1", "GAUTHIER", "Michel Robert", "1955-08-27", "91201", "mercier"),
    Pat("lefebvre", "2", "LEFEBVRE", "Monique Jeanne", "1944-10-05", "75115", "Dr Philippe Renaud (Vigneux-sur-Seine)",
        used_name="DUPONT"),
    Pat("diallo", "2", "DIALLO", "Aminata", "1990-04-17", "99341", "", status="validated"),
    Pat("martinez", "1", "MARTINEZ", "Hugo Antoine", "1973-03-09", "31555", "bernard"),
    Pat("boyer", "2", "BOYER", "Chantal Yvette", "1950-06-22", "13055", "mercier"),
    Pat("muller", "1", "MULLER", "Frédéric Paul", "1962-12-01", "67482", "bernard"),
    Pat("legrand", "2", "LEGRAND", "Inès Sarah", "2001-11-11", "94028", "", status="provisional"),
    Pat("robin", "1", "ROBIN", "Alain Marcel", "1938-02-28", "91421", "mercier"),
    Pat("perrot", "2", "PERROT", "Nathalie Sophie", "1971-07-07", "91201", "bernard"),
    Pat("hoarau", "1", "HOARAU", "Kévin Jean", "1988-10-12", "97411", "bernard"),
    Pat("vidal", "2", "VIDAL", "Jeanne Marie", "1936-05-30", "33063", "mercier"),
    Pat("caron", "1", "CARON", "Mathis Léo", "2015-09-03", "91228", "bernard"),
    Pat("lemaire", "2", "LEMAIRE", "Julie Anne", "1987-01-19", "35238", "mercier"),
    Pat("bertin", "1", "BERTIN", "Roger Louis", "1951-03-25", "44109", "mercier"),
    Pat("meyer", "2", "MEYER", "Caroline Agnès", "1983-08-08", "75120", "bernard"),
    Pat("colin", "1", "COLIN", "Patrick Henri", "1969-11-29", "91228", "mercier"),
    Pat("renard", "2", "RENARD", "Sylvie Marie", "1960-02-02", "91421", "mercier"),
    Pat("guerin", "1", "GUERIN", "Thierry Marc", "1977-06-16", "59350", "bernard"),
    Pat("aubert", "2", "AUBERT", "Margaux Claire", "1994-12-24", "91201", "Dr Sophie Klein (Brunoy)"),
    Pat("marchetti", "1", "MARCHETTI", "Ange François", "1946-09-09", "2B033", "mercier"),
    Pat("roche", "2", "ROCHE", "Odette Lucienne", "1939-04-04", "91421", "mercier"),
    Pat("lebrun", "1", "LEBRUN", "Damien Éric", "1980-05-13", "91201", "bernard"),
)

# Mr Robin cannot express his will; the reason is traced instead of a consent.
ROBIN_CONSENT = ("impossible", "incapacity",
                 "Troubles cognitifs sévères ; sa fille, personne de confiance, a été informée par téléphone.")

# --- The worked example of seeds/002: a pneumologist asks a haematologist about high leukocytes -------------

SEED_002 = CaseSpec(
    "vasseur", "leroy", "benali", days_ago=6,
    question="Hyperleucocytose découverte lors d'un bilan d'apnées du sommeil : faut-il refaire une numération "
             "sanguine, et quels examens complémentaires demander pour confirmer ou écarter une leucémie ?",
    context="Patiente adressée en consultation de pneumologie pour suspicion de syndrome d'apnées obstructives du "
            "sommeil : ronflements, somnolence diurne (Epworth 14/24), IMC 31. Polygraphie ventilatoire programmée.\n"
            "Bilan biologique apporté par la patiente : leucocytes 27,4 G/L dont lymphocytes 21,0 G/L, hémoglobine "
            "13,2 g/dL, plaquettes 245 G/L. Pas d'adénopathie palpable, pas de splénomégalie, ni fièvre, ni sueurs "
            "nocturnes, ni amaigrissement. Aucune numération antérieure disponible.",
    steps=(
        ("doc", "nfs"),
        ("doc", "ct"),
        ("accept", 2),
        report(
            "L'anomalie est une hyperlymphocytose isolée (21 G/L), sans anémie ni thrombopénie, chez une patiente "
            "sans symptôme B ni syndrome tumoral. Le premier diagnostic à évoquer est une leucémie lymphoïde "
            "chronique ; une lymphocytose réactionnelle (infection virale récente, tabac) reste possible.\n"
            "Oui, il faut contrôler la numération, avec un frottis sanguin, dans 2 à 4 semaines. Si la "
            "lymphocytose persiste au-dessus de 5 G/L, l'immunophénotypage des lymphocytes sanguins (score de "
            "Matutes) suffit à confirmer le diagnostic : le myélogramme n'est pas nécessaire.",
            "Suspicion de leucémie lymphoïde chronique sans critère de gravité : pas d'urgence hématologique. "
            "Contrôle NFS avec frottis et immunophénotypage ; l'exploration de l'apnée du sommeil se poursuit "
            "normalement.",
            exams="NFS avec frottis sanguin ; immunophénotypage des lymphocytes circulants ; électrophorèse des "
                  "protéines sériques ; LDH ; bilan hépatique ; sérologies VHB, VHC et VIH.",
            orientation="consultation", consult_in_days=24, hospitalisation="avoided",
            orientation_detail="Consultation d'hématologie une fois l'immunophénotypage disponible : classification "
                               "de Binet, annonce du diagnostic et rythme de surveillance.",
        ),
        ("msg", "requester", "Merci pour cette réponse rapide et très claire. J'ai prescrit le bilan ; la "
                             "patiente fait sa polygraphie la semaine prochaine et je lui ai expliqué la suite."),
    ),
)

# --- Closed: answered, then acknowledged by the requester ----------------------------------------------------

CLOSED = (
    CaseSpec(
        "mercier", "moreau", "net:derm", days_ago=55, priority="urgent",
        question="Lésion pigmentée du dos évolutive : exérèse rapide ou surveillance ?",
        context="Lésion pigmentée interscapulaire apparue il y a 6 mois selon l'épouse, 9 mm, asymétrique, bords "
                "irréguliers, deux teintes de brun. Photos et cliché dermoscopique joints. Pas d'antécédent de "
                "mélanome, phototype II, nombreux coups de soleil dans l'enfance.",
        steps=(
            ("claim", "marchand"), ("accept", 3),
            report("Lésion suspecte de mélanome : asymétrie, bords irréguliers, polychromie, diamètre supérieur à "
                   "6 mm et évolution récente ; réseau pigmentaire atypique en dermoscopie.",
                   "Suspicion de mélanome : exérèse complète avec marges de 2 mm pour examen histologique, sans "
                   "attendre.",
                   orientation="consultation", consult_in_days=8,
                   orientation_detail="Exérèse programmée au bloc de dermatologie ; résultat histologique adressé "
                                      "au médecin traitant."),
            ("msg", "requester", "Merci, le patient a bien reçu sa convocation pour l'exérèse."),
            ("close", {"usefulness": "yes", "avoided": ["none"]}),
        ),
        follow_up={"advice_followed": "yes", "seen": ["by_expert"],
                   "outcome": "Exérèse faite 8 jours après l'avis. Histologie : mélanome in situ, marges saines ; "
                              "surveillance dermatologique tous les 6 mois, le patient va bien."},
    ),
    CaseSpec(
        "roux", "gauthier", "net:derm", days_ago=48,
        question="Lésion perlée de l'épaule découverte pendant une séance : faut-il orienter vers un dermatologue ?",
        context="Patient suivi en kinésithérapie pour une capsulite rétractile. Lors du massage, lésion rosée, "
                "brillante, de 6 mm sur l'épaule gauche, avec de fines télangiectasies ; elle saigne au contact "
                "selon le patient. Photo jointe. Le patient n'a consulté personne pour cette lésion.",
        steps=(
            ("assign", "morel"), ("accept", 5),
            report("L'aspect (papule perlée, télangiectasies, saignement au contact) évoque un carcinome "
                   "basocellulaire nodulaire. Ce n'est pas une urgence mais la lésion doit être retirée.",
                   "Carcinome basocellulaire probable : exérèse chirurgicale à programmer.",
                   orientation="consultation", consult_in_days=21,
                   orientation_detail="Consultation de dermatologie pour exérèse ; merci d'en informer le "
                                      "médecin traitant."),
            ("close",),
        ),
    ),
    CaseSpec(
        "lambert", "roussel", "perrin", days_ago=40,
        question="Créatininémie en hausse sous IEC et diurétique : faut-il adapter le traitement, et quand adresser "
                 "le patient en consultation ?",
        context="Patient diabétique de type 2 et hypertendu suivi en pratique avancée. Créatininémie passée de 128 à "
                "176 µmol/L en 3 mois (DFG CKD-EPI 31 mL/min/1,73 m²). Traitement : ramipril 10 mg, furosémide "
                "40 mg, metformine 500 mg x 2, atorvastatine 20 mg.",
        steps=(
            ("accept", 4),
            ("ask", "Pouvez-vous transmettre la kaliémie, le rapport albuminurie/créatininurie et le poids actuel ? "
                    "Y a-t-il eu récemment un épisode de déshydratation ?"),
            ("reply", "Kaliémie 5,4 mmol/L, RAC 48 mg/mmol, poids stable à 78 kg. Gastro-entérite il y a trois "
                      "semaines avec diarrhée pendant quatre jours, sans arrêt du ramipril ni du furosémide."),
            report("Aggravation probablement fonctionnelle : insuffisance rénale aiguë sur déshydratation sous IEC et "
                   "diurétique, sur une maladie rénale chronique de stade 3b. La metformine doit être réduite à ce "
                   "niveau de DFG.",
                   "Adapter les traitements, contrôler la fonction rénale à 10 jours, puis consultation de "
                   "néphrologie pour le suivi de la maladie rénale chronique.",
                   treatments="Suspendre le furosémide une semaine puis reprendre à 20 mg/j ; réduire le ramipril à "
                              "5 mg/j ; metformine 500 mg/j ; éviter les AINS.",
                   prescription_justification="L'IPA a transmis la biologie complète (créatininémie, kaliémie, RAC), "
                                              "la liste des traitements, le poids et l'épisode intercurrent : les "
                                              "données étaient complètes pour proposer cette adaptation.",
                   exams="Créatininémie et kaliémie à J10, puis tous les mois pendant trois mois.",
                   orientation="consultation", consult_in_days=30,
                   orientation_detail="Consultation de néphrologie au Centre hospitalier des Deux Rives."),
            ("close",),
        ),
    ),
    CaseSpec(
        "garnier", "legrand", "net:derm", days_ago=33,
        question="Éruption du tronc après un médaillon initial : pityriasis rosé de Gibert ? Un traitement peut-il "
                 "être délivré ?",
        context="Jeune femme venue à l'officine pour des plaques rosées ovalaires finement squameuses du tronc, "
                "apparues dix jours après une plaque plus grande sur le flanc. Prurit modéré, pas de fièvre, pas de "
                "lésion des muqueuses ni des paumes. Aucun traitement en cours (dossier pharmaceutique), pas "
                "d'allergie connue. Photos jointes.",
        steps=(
            ("claim", "morel"), ("accept", 2),
            report("Aspect typique de pityriasis rosé de Gibert : médaillon initial puis éruption secondaire "
                   "disposée selon les lignes de tension du tronc.",
                   "Pityriasis rosé de Gibert, affection bénigne qui guérit spontanément en 6 à 8 semaines.",
                   treatments="Émollient deux fois par jour ; desloratadine 5 mg, un comprimé par jour pendant 10 "
                              "jours si le prurit gêne.",
                   prescription_justification="Photographies nettes et datées, dossier pharmaceutique consulté (aucun "
                                              "traitement, aucune allergie), absence de fièvre et de lésion muqueuse "
                                              "ou palmo-plantaire : les données étaient complètes pour proposer ce "
                                              "traitement.",
                   exams="Sérologie syphilitique si la patiente rapporte un rapport à risque ou si l'éruption touche "
                         "les paumes.",
                   orientation_detail="Reconsulter son médecin si l'éruption dure plus de 8 semaines."),
            ("close",),
        ),
    ),
    CaseSpec(
        "fabre", "nicolas", "net:cardio", days_ago=28, priority="urgent",
        question="Palpitations d'effort à 28 SA avec tachycardie de repos : un avis cardiologique en présentiel "
                 "est-il nécessaire ?",
        context="Primigeste à 28 SA, grossesse sans complication. Palpitations à l'effort depuis deux semaines, "
                "fréquence cardiaque de repos 104/min, tension 112/68. Pas de douleur thoracique, pas de malaise. "
                "ECG réalisé au cabinet joint.",
        steps=(
            ("claim", "haddad"), ("accept", 1),
            report("ECG : tachycardie sinusale à 102/min, PR et QRS normaux, pas de trouble de la repolarisation. "
                   "La grossesse augmente physiologiquement la fréquence cardiaque de 10 à 20/min ; il faut "
                   "toutefois éliminer une anémie et une hyperthyroïdie.",
                   "Tachycardie sinusale sans argument pour une cardiopathie : bilan biologique simple, pas de "
                   "consultation urgente.",
                   exams="NFS, ferritine, TSH ; Holter ECG des 24 heures si les palpitations persistent.",
                   orientation_detail="Nouvel avis si malaise, syncope ou dyspnée de repos."),
            ("close",),
        ),
    ),
    CaseSpec(
        "bernard", "muller", "girard", days_ago=45,
        question="Rétinographie de dépistage chez un diabétique : quel stade de rétinopathie, et quel délai de "
                 "suivi ?",
        context="Diabète de type 2 depuis 12 ans, HbA1c 8,4 %, hypertension traitée. Rétinographies non mydriatiques "
                "des deux yeux jointes (réalisées par l'orthoptiste du centre de santé). Pas de plainte visuelle.",
        steps=(
            ("accept", 5),
            report("Rétinopathie diabétique non proliférante modérée aux deux yeux : microanévrismes, hémorragies "
                   "punctiformes et quelques exsudats, sans œdème maculaire visible sur les clichés.",
                   "Rétinopathie non proliférante modérée : examen ophtalmologique complet avec OCT maculaire dans "
                   "les trois mois ; équilibre glycémique et tensionnel à renforcer.",
                   exams="OCT maculaire et fond d'œil dilaté.",
                   orientation="consultation", consult_in_days=45,
                   orientation_detail="Consultation d'ophtalmologie au Centre hospitalier des Deux Rives."),
            ("close",),
        ),
    ),
    CaseSpec(
        "mercier", "bertin", "rousseau", days_ago=58,
        question="Surdité de perception asymétrique avec acouphène droit : une IRM est-elle indiquée ?",
        context="Acouphène droit permanent depuis quatre mois, gêne auditive. Audiogramme joint : surdité de "
                "perception droite de 35 dB sur les aigus, 10 dB à gauche. Pas de vertige. Otoscopie normale.",
        steps=(
            ("accept", 5),
            report("Surdité de perception asymétrique (écart de plus de 15 dB sur deux fréquences contiguës) avec "
                   "acouphène unilatéral : il faut éliminer un schwannome vestibulaire.",
                   "IRM des conduits auditifs internes indiquée, puis consultation ORL avec le résultat.",
                   exams="IRM des angles ponto-cérébelleux et des conduits auditifs internes avec injection de "
                         "gadolinium.",
                   orientation="consultation", consult_in_days=40,
                   orientation_detail="Consultation ORL avec le résultat de l'IRM."),
            ("amend", {"exams": "IRM des angles ponto-cérébelleux et des conduits auditifs internes, séquences "
                                "haute résolution en T2 ; l'injection de gadolinium n'est pas nécessaire en "
                                "première intention.",
                       "amendment_reason": "Précision du protocole d'IRM demandée par le radiologue."}),
            ("close",),
        ),
    ),
    CaseSpec(
        "bernard", "guerin", "net:cardio", days_ago=36,
        question="Ondes T négatives de V1 à V3 sur un ECG avant reprise du sport : contre-indication ?",
        context="Patient asymptomatique souhaitant reprendre la course à pied en compétition. ECG joint : bloc de "
                "branche droit incomplet, ondes T négatives de V1 à V3. Tension 128/78. Pas de souffle.",
        steps=(
            ("claim", "leclerc"),
            ("ask", "Y a-t-il des antécédents familiaux de mort subite ou de cardiomyopathie ? Pouvez-vous joindre "
                    "un ECG antérieur ?"),
            ("reply", "Aucun antécédent familial connu. ECG de 2019 joint : aspect identique."),
            ("accept", 4),
            report("Aspect stable depuis 2019 ; des ondes T négatives limitées à V1-V3 sont souvent une variante de "
                   "la normale, mais une cardiopathie du ventricule droit doit être écartée avant le sport en "
                   "compétition.",
                   "Pas de contre-indication en l'état pour le sport de loisir ; échocardiographie et épreuve d'effort "
                   "avant la compétition.",
                   exams="Échocardiographie transthoracique ; épreuve d'effort.",
                   orientation="consultation", consult_in_days=20,
                   orientation_detail="Consultation de cardiologie du sport avec les examens.",
                   technical_incidents="ECG de 2019 transmis d'abord en PDF illisible, renvoyé en image."),
            ("close",),
        ),
    ),
    CaseSpec(
        "lambert", "roche", "net:derm", days_ago=22,
        question="Ulcère de jambe qui ne cicatrise pas malgré la compression : soins locaux et biopsie ?",
        context="Ulcère de la face interne de la jambe gauche, 4 cm, évoluant depuis trois mois malgré une "
                "compression bien portée. Index de pression systolique 0,92. Fond fibrineux, bords réguliers. "
                "Photos avec réglette jointes.",
        steps=(
            ("claim", "marchand"), ("accept", 4),
            report("Ulcère veineux probable (index de pression normal). L'absence d'amélioration après trois mois "
                   "de compression justifie une biopsie pour éliminer un carcinome.",
                   "Poursuivre la compression avec détersion ; biopsie en bordure de l'ulcère.",
                   treatments="Détersion mécanique ; pansement hydrocellulaire ; compression multicouche "
                              "(40 mmHg) maintenue.",
                   prescription_justification="Photographies avec réglette, index de pression systolique et "
                                              "historique des soins fournis par l'IPA : les données étaient "
                                              "complètes pour proposer ces soins.",
                   exams="Biopsie cutanée en bordure de l'ulcère.",
                   orientation="consultation", consult_in_days=14,
                   orientation_detail="Biopsie en consultation de dermatologie."),
            ("close",),
        ),
    ),
    CaseSpec(
        "mercier", "vidal", "benali", days_ago=18,
        question="Thrombopénie modérée découverte fortuitement : quels examens avant d'adresser la patiente ?",
        context="Plaquettes 98 G/L sur un bilan systématique, contrôlées à 102 G/L sur tube citraté. Pas de "
                "saignement, pas de purpura. Hémoglobine et leucocytes normaux. Traitements : amlodipine, "
                "lévothyroxine.",
        steps=(
            ("accept", 5),
            report("Thrombopénie modérée, isolée et stable, sans syndrome hémorragique : pas d'urgence. Les causes "
                   "les plus fréquentes à cet âge sont hépatiques, médicamenteuses ou une hémopathie débutante.",
                   "Bilan étiologique en ville ; consultation d'hématologie seulement si les plaquettes passent "
                   "sous 80 G/L ou si le bilan est anormal.",
                   exams="Frottis sanguin ; bilan hépatique ; échographie abdominale (recherche de splénomégalie) ; "
                         "sérologies VIH, VHB, VHC ; électrophorèse des protéines sériques.",
                   orientation_detail="Contrôle de la numération dans trois mois par le médecin traitant."),
            ("close",),
        ),
    ),
    CaseSpec(
        "bernard", "meyer", "fabre", days_ago=14,
        question="Contraception du post-partum chez une patiente allaitante aux antécédents de thrombose veineuse : "
                 "que proposer ?",
        context="Trois mois après un accouchement par voie basse, allaitement exclusif. Thrombose veineuse profonde "
                "du mollet en 2019 sous contraception œstroprogestative. Pas d'autre antécédent.",
        steps=(
            ("accept", 3),
            report("Les contraceptifs œstroprogestatifs sont contre-indiqués (antécédent de thrombose veineuse). "
                   "Les progestatifs seuls et les dispositifs intra-utérins sont utilisables pendant l'allaitement.",
                   "Proposer un progestatif seul ou un DIU, au choix de la patiente.",
                   treatments="Désogestrel 75 µg, un comprimé par jour en continu ; ou DIU au cuivre ou au "
                              "lévonorgestrel.",
                   orientation="other_professional",
                   orientation_detail="Si la patiente choisit un DIU : pose au cabinet de sages-femmes des Lilas."),
            ("close",),
        ),
    ),
    CaseSpec(
        "mercier", "colin", "vasseur", days_ago=26,
        question="Nodule pulmonaire de 7 mm découvert sur un scanner abdominal chez un fumeur : quel suivi ?",
        context="Scanner abdominal pour douleurs biliaires : nodule solide de 7 mm du lobe supérieur droit. "
                "Tabagisme actif à 30 paquets-années. Pas de toux ni d'amaigrissement. Compte rendu et images "
                "joints.",
        steps=(
            ("accept", 5),
            report("Nodule solide de 6 à 8 mm chez un patient à haut risque : une surveillance scanographique "
                   "suffit en première intention.",
                   "Scanner thoracique de contrôle à 3 mois ; aide au sevrage tabagique.",
                   exams="Scanner thoracique faible dose dans 3 mois.",
                   orientation="other_professional",
                   orientation_detail="Consultation d'aide au sevrage tabagique ; nouvel avis avec le scanner de "
                                      "contrôle."),
            ("close",),
        ),
    ),
)

# --- Answered: the report is signed, the requester has not closed yet ---------------------------------------

ANSWERED = (
    SEED_002,
    CaseSpec(
        "bernard", "blanc", "net:derm", days_ago=9,
        question="Acné inflammatoire sévère résistante à la doxycycline : indication d'isotrétinoïne ?",
        context="Acné nodulaire du visage et du dos, cicatrices débutantes, retentissement psychologique. Trois mois "
                "de doxycycline 100 mg et peroxyde de benzoyle sans amélioration. Photos jointes.",
        steps=(
            ("claim", "morel"), ("accept", 5),
            report("Acné nodulaire avec cicatrices, en échec d'une antibiothérapie bien conduite de trois mois : "
                   "l'isotrétinoïne orale est indiquée.",
                   "Indication d'isotrétinoïne ; arrêter la doxycycline (association contre-indiquée).",
                   exams="Bilan lipidique et transaminases avant traitement.",
                   orientation="consultation", consult_in_days=15,
                   orientation_detail="Consultation de dermatologie pour l'initiation du traitement et "
                                      "l'information du patient."),
        ),
    ),
    CaseSpec(
        "garnier", "boyer", "net:cardio", days_ago=4, priority="urgent",
        question="Patiente sous apixaban avec une ordonnance de clarithromycine : interaction ? Peut-on délivrer ?",
        context="Fibrillation atriale sous apixaban 5 mg x 2. Ordonnance de clarithromycine 500 mg x 2 pendant 7 "
                "jours rédigée par le chirurgien-dentiste pour une infection dentaire. Pas d'allergie aux "
                "pénicillines (vérifié avec la patiente). DFG 62 mL/min sur le dernier bilan.",
        steps=(
            ("claim", "haddad"), ("accept", 1),
            report("La clarithromycine, inhibiteur puissant du CYP3A4 et de la P-gp, augmente l'exposition à "
                   "l'apixaban et le risque hémorragique : l'association est à éviter.",
                   "Ne pas délivrer la clarithromycine ; la remplacer par l'amoxicilline, l'apixaban étant poursuivi "
                   "sans changement.",
                   treatments="Amoxicilline 1 g deux fois par jour pendant 7 jours ; apixaban 5 mg x 2 inchangé.",
                   prescription_justification="Liste complète des traitements (dossier pharmaceutique), absence "
                                              "d'allergie vérifiée auprès de la patiente et fonction rénale récente "
                                              "transmises : les données étaient complètes pour proposer cette "
                                              "substitution.",
                   orientation="other_professional",
                   orientation_detail="Le pharmacien informe le chirurgien-dentiste prescripteur."),
        ),
    ),
    CaseSpec(
        "lambert", "robin", "net:cardio", days_ago=3, priority="urgent", consent=ROBIN_CONSENT,
        question="Prise de poids rapide chez un insuffisant cardiaque : faut-il augmenter le furosémide ?",
        context="Insuffisance cardiaque à FEVG 35 %. Prise de 2,5 kg en cinq jours, œdèmes des chevilles, dyspnée "
                "stade II stable. Tension 118/70, pouls 78/min. Ionogramme de la veille : sodium 137, potassium "
                "4,1, créatininémie 118 µmol/L. Furosémide 40 mg/j.",
        steps=(
            ("assign", "leclerc"), ("accept", 1),
            report("Décompensation cardiaque débutante, sans signe de gravité, avec une fonction rénale et une "
                   "kaliémie correctes : une majoration transitoire du diurétique est adaptée.",
                   "Majorer le furosémide cinq jours, surveillance quotidienne du poids, téléconsultation à une "
                   "semaine.",
                   treatments="Furosémide 80 mg/j pendant 5 jours, puis 40 mg/j si le poids revient au poids sec.",
                   prescription_justification="Poids quotidiens, ionogramme et créatininémie de la veille, tension et "
                                              "fréquence cardiaque transmis par l'IPA : les données étaient "
                                              "complètes pour adapter le diurétique.",
                   exams="Ionogramme et créatininémie à J5.",
                   orientation="teleconsultation", consult_in_days=7, hospitalisation="avoided",
                   orientation_detail="Appeler le 15 en cas de dyspnée de repos."),
        ),
    ),
    CaseSpec(
        "fabre", "diallo", "perrin", days_ago=7,
        question="Protéinurie à 24 SA chez une patiente normotendue : faut-il une exploration néphrologique pendant "
                 "la grossesse ?",
        context="Deuxième grossesse, 24 SA. Protéinurie 0,45 g/24 h, tension 128/82, créatininémie 62 µmol/L. "
                "Antécédent de pyélonéphrite aiguë en 2020. Pas d'œdème.",
        steps=(
            ("accept", 4),
            report("Protéinurie modérée sans hypertension à 24 SA : il faut éliminer une infection urinaire et "
                   "rechercher une néphropathie antérieure à la grossesse. Le risque de prééclampsie justifie une "
                   "surveillance rapprochée.",
                   "Bilan simple et surveillance tensionnelle rapprochée ; pas de biopsie pendant la grossesse.",
                   exams="ECBU ; rapport protéinurie/créatininurie ; échographie rénale.",
                   orientation="other_professional",
                   orientation_detail="Suivi conjoint avec l'obstétricien de la maternité ; consultation de "
                                      "néphrologie en post-partum si la protéinurie persiste."),
        ),
    ),
    CaseSpec(
        "mercier", "santoni", "girard", days_ago=5, priority="urgent",
        question="Baisse de vision de l'œil droit avec métamorphopsies : DMLA exsudative ? Dans quel délai voir le "
                 "patient ?",
        context="Baisse d'acuité visuelle progressive de l'œil droit depuis trois semaines, lignes droites "
                "déformées. Grille d'Amsler anormale (photo jointe). Pas de douleur ni de rougeur.",
        steps=(
            ("accept", 2),
            report("Des métamorphopsies récentes et unilatérales à cet âge font évoquer une DMLA exsudative jusqu'à "
                   "preuve du contraire.",
                   "Consultation rapide avec OCT ; injections intravitréales si le diagnostic est confirmé.",
                   orientation="consultation", consult_in_days=3,
                   orientation_detail="Créneau d'urgence réservé en consultation d'ophtalmologie."),
        ),
    ),
    CaseSpec(
        "bernard", "caron", "rousseau", days_ago=11,
        question="Otites séreuses récidivantes avec surdité de transmission : indication d'aérateurs "
                 "transtympaniques ?",
        context="Otites séreuses bilatérales depuis un an, retard de langage signalé par l'école. Audiogramme joint : "
                "surdité de transmission bilatérale de 30 dB, tympanogrammes plats.",
        consent=("representative", "Mme Aurélie CARON (mère)"),
        steps=(
            ("accept", 5),
            report("Otite séromuqueuse bilatérale persistante avec surdité de 30 dB et retentissement sur le "
                   "langage : la pose d'aérateurs transtympaniques est indiquée.",
                   "Indication d'aérateurs transtympaniques ; consultation pré-opératoire.",
                   orientation="consultation", consult_in_days=30,
                   orientation_detail="Consultation ORL pédiatrique pré-opératoire."),
        ),
    ),
    CaseSpec(
        "mercier", "paoli", "net:derm", days_ago=13,
        question="Lésion croûteuse de la paupière inférieure qui saigne : quelle conduite à tenir ?",
        context="Lésion de 5 mm du bord de la paupière inférieure droite, croûteuse, saignant par intermittence "
                "depuis deux mois. Photo jointe.",
        steps=(
            ("claim", "marchand"),
            ("transfer", "girard", "Lésion du bord palpébral : la prise en charge relève de l'oculoplastie, je "
                                   "transfère au Dr Girard."),
            ("accept", 4),
            report("Aspect de carcinome basocellulaire du bord libre palpébral.",
                   "Exérèse en chirurgie oculoplastique avec examen histologique des marges.",
                   orientation="consultation", consult_in_days=18,
                   orientation_detail="Consultation d'oculoplastie au Centre hospitalier des Deux Rives."),
        ),
    ),
)

# --- Accepted: the deadline runs (three are overdue) -----------------------------------------------------------

ACCEPTED = (
    CaseSpec(
        "mercier", "martinez", "net:cardio", days_ago=12,
        question="Fibrillation atriale paroxystique au Holter : faut-il anticoaguler ?",
        context="Palpitations rapides et irrégulières depuis deux mois. Holter ECG de 24 h joint : trois accès de "
                "fibrillation atriale de 2 à 10 minutes. Hypertension traitée ; CHA2DS2-VASc à 1.",
        steps=(("claim", "leclerc"), ("accept", 2),
               ("msg", "requester", "Le patient a refait un épisode hier soir, vingt minutes, bien toléré. Avez-vous "
                                    "pu regarder le Holter ?")),
    ),
    CaseSpec(
        "lambert", "renard", "perrin", days_ago=6, priority="urgent",
        question="Hyperkaliémie à 5,8 mmol/L sous spironolactone avec un DFG à 35 : faut-il arrêter la "
                 "spironolactone ?",
        context="Hypertension résistante traitée par spironolactone 25 mg, périndopril 8 mg et amlodipine 10 mg. "
                "Créatininémie 142 µmol/L (DFG 35), kaliémie 5,8 mmol/L sur prélèvement non hémolysé.",
        steps=(("accept", 1),),
    ),
    CaseSpec(
        "bernard", "hoarau", "rousseau", days_ago=9,
        question="Épistaxis récidivantes de la fosse nasale gauche : cautérisation ou nasofibroscopie d'abord ?",
        context="Cinq épisodes en un mois, toujours à gauche, arrêtés par compression. Pas d'anticoagulant ni "
                "d'antiagrégant. Hémoglobine 14,1 g/dL.",
        steps=(("accept", 3),),
    ),
    CaseSpec(
        "mercier", "aubert", "net:derm", days_ago=2,
        question="Plaques squameuses des coudes et du cuir chevelu : psoriasis ? Quel traitement local ?",
        context="Plaques érythémato-squameuses bien limitées des coudes et du cuir chevelu depuis six mois, prurit "
                "modéré. Pas de douleur articulaire. Photos jointes.",
        steps=(
            ("claim", "morel"), ("accept", 5),
            ("draft_report", {"answer": "Aspect typique de psoriasis en plaques, forme limitée (moins de 3 % de la "
                                        "surface corporelle).",
                              "conclusion": "Traitement local ; à compléter."}),
        ),
    ),
    CaseSpec(
        "roux", "lebrun", "net:cardio", days_ago=3,
        question="Pression artérielle à 185/95 à l'effort pendant la réadaptation après infarctus : peut-on "
                 "poursuivre le réentraînement ?",
        context="Infarctus antérieur traité par stent de l'IVA il y a deux mois. Réadaptation en cabinet sur "
                "prescription du cardiologue. PA à 185/95 au palier de 60 W sur cycloergomètre, sans symptôme.",
        steps=(
            ("claim", "haddad"),
            ("ask", "Quelle est la pression artérielle de repos et la fréquence cardiaque à l'effort ? Le patient "
                    "prend-il bien son bêtabloquant ?"),
            ("reply", "PA de repos 138/84, fréquence cardiaque 118/min au palier de 60 W. Bisoprolol 2,5 mg pris "
                      "chaque matin. Aucune douleur thoracique."),
            ("accept", 4),
        ),
    ),
    CaseSpec(
        "fabre", "lemaire", "girard", days_ago=1,
        question="Myopie forte et antécédent de déchirure rétinienne : y a-t-il une contre-indication aux efforts "
                 "expulsifs ?",
        context="Grossesse de 30 SA. Myopie de -9 dioptries, déchirure rétinienne de l'œil gauche traitée au laser "
                "en 2021. Dernier fond d'œil il y a deux ans.",
        steps=(("accept", 6),),
    ),
)

# --- Awaiting information from the requester -------------------------------------------------------------------

AWAITING = (
    CaseSpec(
        "bernard", "perrot", "net:derm", days_ago=3,
        question="Nodule du cuir chevelu qui grossit : faut-il l'enlever ?",
        context="Nodule ferme de 1 cm du vertex, apparu il y a quatre mois, indolore. Photos jointes.",
        steps=(("claim", "marchand"),
               ("ask", "Les photos sont floues et sans échelle : pouvez-vous transmettre une photo nette avec une "
                       "réglette, et une photo dermoscopique si possible ?")),
    ),
    CaseSpec(
        "lambert", "lefebvre", "net:cardio", days_ago=4,
        question="INR instables sous warfarine : un relais par anticoagulant oral direct est-il possible ?",
        context="Fibrillation atriale permanente sous warfarine. INR entre 1,6 et 4,2 sur les deux derniers mois "
                "malgré une bonne observance.",
        steps=(("assign", "haddad"), ("accept", 5),
               ("ask", "Merci de transmettre la créatininémie et le poids récents, ainsi que la liste complète des "
                       "traitements.")),
    ),
    CaseSpec(
        "garnier", "faure", "morel", days_ago=2,
        question="Dermocorticoïde de classe forte prescrit pour le visage d'un enfant : est-ce adapté ?",
        context="Enfant suivie pour une dermatite atopique des plis, poussée malgré les émollients. Ordonnance de "
                "bétaméthasone crème pour le visage et les plis, sans durée précisée.",
        consent=("representative", "M. Nicolas FAURE (père)"),
        steps=(("ask", "Pouvez-vous joindre des photos du visage et des plis, et préciser la durée de traitement "
                       "prévue par le prescripteur ?"),),
    ),
    CaseSpec(
        "mercier", "bensalem", "benali", days_ago=5,
        question="Ferritine à 1 250 µg/L : hémochromatose ? Faut-il des saignées ?",
        context="Ferritine 1 250 µg/L, coefficient de saturation de la transferrine 58 %, ALAT à 1,5 fois la "
                "normale. Asthénie. Pas d'antécédent familial connu.",
        steps=(("ask", "Le génotypage HFE a-t-il été fait ? Quelle est la consommation d'alcool, et y a-t-il un "
                       "syndrome métabolique ?"),),
    ),
)

# --- Taken from a network's pool, not yet accepted ------------------------------------------------------------

TAKEN = (
    CaseSpec(
        "bernard", "meyer", "net:derm", days_ago=1,
        question="Chute de cheveux diffuse trois mois après un accouchement : effluvium télogène ? Un traitement "
                 "est-il utile ?",
        context="Chute diffuse depuis quatre mois, sans plaque d'alopécie. Ferritine 45 µg/L, TSH normale. Photos "
                "du cuir chevelu jointes.",
        steps=(("doc", "scalp"), ("claim", "marchand")),
    ),
    CaseSpec(
        "mercier", "marchetti", "net:cardio", days_ago=0.4, priority="urgent",
        question="Souffle systolique aortique et dyspnée d'effort récente : rétrécissement aortique ? Dans quel "
                 "délai faire l'échographie ?",
        context="Souffle systolique 3/6 au foyer aortique, non connu l'an dernier. Dyspnée pour deux étages depuis "
                "un mois, pas de syncope ni de douleur thoracique.",
        steps=(("doc", "ecg"), ("assign", "haddad")),
    ),
    CaseSpec(
        "mercier", "renard", "net:derm", days_ago=1,
        question="Bande pigmentée unguéale du pouce qui s'élargit : faut-il une biopsie ?",
        context="Mélanonychie longitudinale de 3 mm du pouce droit apparue il y a un an, élargie depuis trois mois. "
                "Pas de traumatisme. Photo jointe.",
        steps=(("doc", "nail"), ("claim", "morel")),
    ),
    CaseSpec(
        "garnier", "muller", "net:cardio", days_ago=0.3,
        question="Bradycardie à 48/min mesurée à l'officine chez un patient sous bisoprolol : faut-il adapter ?",
        context="Patient asymptomatique, tension 124/76. Bisoprolol 5 mg depuis six mois pour une hypertension.",
        steps=(("claim", "leclerc"),),
    ),
)

# --- Submitted: waiting in a network's pool or for the named expert ------------------------------------------

SUBMITTED = (
    CaseSpec(
        "mercier", "petit", "net:derm", days_ago=0.2,
        question="Urticaire chronique résistante à la cétirizine : quel bilan, et faut-il augmenter les "
                 "antihistaminiques ?",
        context="Plaques urticariennes quotidiennes depuis huit semaines, sans angio-œdème. Cétirizine 10 mg/j sans "
                "effet. Pas de nouveau médicament.",
    ),
    CaseSpec(
        "lambert", "robin", "net:derm", days_ago=0.15, priority="urgent",
        question="Bulles tendues des membres avec prurit intense : pemphigoïde bulleuse ?",
        context="Bulles tendues sur fond érythémateux des cuisses et des avant-bras depuis deux semaines, prurit "
                "intense, pas d'atteinte muqueuse. Photos jointes.",
        consent=ROBIN_CONSENT,
    ),
    CaseSpec(
        "bernard", "blanc", "net:cardio", days_ago=0.1, priority="urgent",
        question="QT long sur l'ECG après une lipothymie à l'effort : quelle conduite à tenir avant tout sport ?",
        context="Lipothymie pendant un match de football, sans perte de connaissance. ECG joint : QTc 480 ms. Pas "
                "de traitement allongeant le QT. Kaliémie 4,0 mmol/L.",
    ),
    CaseSpec(
        "mercier", "santoni", "net:cardio", days_ago=1.5,
        question="Hypertension résistante à une trithérapie : faut-il rechercher une cause secondaire ?",
        context="MAPA jointe : 152/94 de moyenne diurne sous amlodipine 10 mg, périndopril 8 mg et indapamide "
                "1,5 mg, bonne observance. Kaliémie 3,6 mmol/L.",
    ),
    CaseSpec(
        "bernard", "boyer", "perrin", days_ago=0.8,
        question="Kystes rénaux bilatéraux multiples : polykystose rénale ? Faut-il un conseil génétique ?",
        context="Échographie pour douleurs lombaires : multiples kystes dans les deux reins. Créatininémie "
                "normale. Mère dialysée pour une maladie rénale non étiquetée.",
    ),
    CaseSpec(
        "garnier", "legrand", "girard", days_ago=0.03, priority="urgent", mode="synchronous",
        question="Œil rouge douloureux chez une porteuse de lentilles : collyre à l'officine ou consultation en "
                 "urgence ?",
        context="Œil droit rouge et douloureux depuis ce matin, photophobie, vision un peu floue. Lentilles "
                "mensuelles portées la nuit dernière. Photo jointe.",
    ),
    CaseSpec(
        "mercier", "aubert", "fabre", days_ago=0.4,
        question="Vomissements gravidiques avec perte de poids : une prise en charge en ville est-elle possible ?",
        context="Grossesse de 8 SA. Nausées et vomissements pluriquotidiens, perte de 3 kg, cétonurie à une croix. "
                "Boit par petites quantités.",
    ),
)

# --- Declined, withdrawn, drafts --------------------------------------------------------------------------------

DECLINED = (
    CaseSpec(
        "mercier", "gauthier", "net:derm", days_ago=30,
        question="Grain de beauté qui gratte : faut-il l'enlever ?",
        context="Lésion du dos qui gratte depuis quelques semaines.",
        steps=(("claim", "morel"),
               ("decline", "Photo floue, sans échelle ni dermoscopie, et aucune description de la lésion : la "
                           "téléexpertise n'est pas réalisable. Merci d'adresser le patient en consultation de "
                           "dermatologie ou de renvoyer une demande avec des photos exploitables.")),
    ),
    CaseSpec(
        "roux", "colin", "net:cardio", days_ago=16,
        question="Douleur thoracique pendant la séance : le patient peut-il poursuivre la rééducation ?",
        context="Douleur thoracique constrictive à l'effort pendant la séance, cédant au repos en cinq minutes.",
        priority="urgent",
        steps=(("claim", "leclerc"),
               ("decline", "Une douleur thoracique d'effort récente doit être évaluée sans délai : elle ne relève pas "
                           "de la téléexpertise. Arrêt de la rééducation, consultation du médecin traitant ce jour "
                           "et appel au 15 en cas de récidive.")),
    ),
    CaseSpec(
        "garnier", "bertin", "benali", days_ago=20,
        question="Ordonnance d'hydroxycarbamide expirée : peut-on la renouveler ?",
        context="Patient suivi en hématologie pour une polyglobulie, ordonnance hospitalière expirée depuis une "
                "semaine.",
        steps=(("decline", "Le renouvellement d'un traitement de prescription hospitalière relève du service "
                           "prescripteur, pas d'une téléexpertise : le secrétariat d'hématologie rappelle le patient "
                           "pour un rendez-vous cette semaine."),),
    ),
    CaseSpec(
        "bernard", "vidal", "girard", days_ago=38,
        question="Baisse de vision bilatérale progressive : cataracte ?",
        context="Gêne visuelle progressive depuis un an, éblouissement la nuit.",
        steps=(("decline", "Sans mesure de l'acuité visuelle ni examen à la lampe à fente, je ne peux pas répondre à "
                           "distance : une consultation d'ophtalmologie est nécessaire (rendez-vous possible via le "
                           "secrétariat)."),),
    ),
)

WITHDRAWN = (
    CaseSpec(
        "mercier", "roussel", "net:cardio", days_ago=24,
        question="Dyspnée d'effort d'aggravation récente : faut-il une échocardiographie rapide ?",
        context="Dyspnée pour un étage depuis trois semaines, œdèmes des chevilles.",
        steps=(("withdraw", "Le patient a été hospitalisé entre-temps en cardiologie : la question n'a plus "
                            "d'objet."),),
    ),
    CaseSpec(
        "fabre", "nicolas", "net:derm", days_ago=19,
        question="Papules prurigineuses des vergetures abdominales à 34 SA : PUPPP ?",
        context="Papules et plaques urticariennes très prurigineuses des vergetures depuis une semaine. Bilan "
                "hépatique et acides biliaires normaux.",
        steps=(("claim", "marchand"),
               ("withdraw", "La patiente a pu consulter un dermatologue en ville entre-temps.")),
    ),
    CaseSpec(
        "bernard", "hoarau", "vasseur", days_ago=44,
        question="Toux chronique depuis trois mois avec radiographie normale : quelles explorations ?",
        context="Toux sèche depuis trois mois, non-fumeur, radiographie thoracique normale.",
        steps=(("ask", "Pouvez-vous préciser les traitements en cours (IEC ?) et joindre une spirométrie si elle a "
                       "été faite ?"),
               ("withdraw", "Le patient ne souhaite finalement pas poursuivre les explorations.")),
    ),
)

DRAFTS = (
    CaseSpec(
        "mercier", "moreau", "net:derm", days_ago=0.5, draft=True,
        question="Nouvelle lésion pigmentée du thorax, un an après l'exérèse d'un mélanome : exérèse ?",
        context="Lésion de 5 mm du thorax découverte lors de l'auto-surveillance. Photos à joindre.",
    ),
    CaseSpec(
        "lambert", "roche", "perrin", days_ago=2, draft=True, consent=None,
        question="Adaptation des traitements à un DFG à 25 mL/min chez une patiente très âgée ?",
        context="Consentement à recueillir lors de la prochaine visite à domicile.",
    ),
    CaseSpec(
        "roux", "guerin", "", days_ago=8, draft=True,
        question="Lombalgie avec irradiation sous le genou qui ne s'améliore pas après six séances : une imagerie "
                 "est-elle utile ?",
        context="Destinataire à choisir.",
    ),
)

CASES = CLOSED + ANSWERED + ACCEPTED + AWAITING + TAKEN + SUBMITTED + DECLINED + WITHDRAWN + DRAFTS
